"""One analysis worker process (``models.analysis_pool``): a single-thread pipeline that answers photos
sent over a socket, one at a time, in the order they came.

Frames on the socket are an 8-byte little-endian length and a pickle. The worker's first frame is
``("ready", pid)`` once its models are loaded; each request ``(task, data, max_faces, limits, embed)`` is
answered by ``(task, True, result)`` or ``(task, False, exception)``.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
from typing import Literal

import numpy as np

from models.face import Face

HEADER = struct.Struct("<Q")

Embed = bool | Literal["largest"]
Result = tuple[list[Face], np.ndarray, tuple[int, int], np.ndarray | None, list | None]


def frame(message: object) -> bytes:
    """``message`` as one frame."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> object | None:
    """The next message on a blocking socket; None once the other end has closed it."""
    head = _read_exactly(sock, HEADER.size)
    if head is None:
        return None
    payload = _read_exactly(sock, HEADER.unpack(head)[0])
    return None if payload is None else pickle.loads(payload)


def analyse(
    pipeline, policy, budget, data: bytes, max_faces: int | None, limits: dict, embed: Embed
) -> Result:
    """Decode, detect and align ``data``; ``embed`` True: also every crop's embedding and quality;
    ``"largest"``: the embedding of the largest face only (by area; the one enrollment keeps), 1×D."""
    from models.detectors.policy import analyse_photo
    from models.quality import assess

    faces, crops, full = analyse_photo(pipeline, data, policy, max_faces=max_faces, budget=budget, **limits)
    if not (embed and len(crops)):
        return faces, crops, full, None, None
    if embed == "largest":
        largest = max(range(len(faces)), key=lambda i: faces[i].area)
        return faces, crops, full, pipeline.embed_crops(crops[largest : largest + 1]), None
    qualities = [assess(face, crop) for face, crop in zip(faces, crops, strict=True)]
    return faces, crops, full, pipeline.embed_crops(crops), qualities


def _reply(task: int, ok: bool, value: object) -> bytes:
    try:
        return frame((task, ok, value))
    except Exception as exc:  # noqa: BLE001 - an unpicklable error still answers its request
        return frame((task, False, RuntimeError(f"{type(value).__name__}: {value} ({exc})")))


def serve(sock: socket.socket, slot: int, pack: str, providers: list[str] | None, policy, budget) -> None:
    """The worker's main: load the pack, say ready, then answer requests until the socket closes;
    ``budget`` (a ``SharedBudget``) charged to ``slot``."""
    from models.images import return_freed_memory_promptly
    from models.pipeline import FacePipeline
    from models.topology import limit_opencv_threads

    return_freed_memory_promptly()
    limit_opencv_threads(1)  # one single-thread pipeline per process, OpenCV included
    pipeline = FacePipeline.from_pack(pack, providers=providers, threads=1)
    budget.bind(slot)
    sock.sendall(frame(("ready", os.getpid())))
    while (request := read_frame(sock)) is not None:
        task, data, max_faces, limits, embed = request
        try:
            reply = _reply(task, True, analyse(pipeline, policy, budget, data, max_faces, limits, embed))
        except Exception as exc:  # noqa: BLE001 - the request's error travels back to its caller
            reply = _reply(task, False, exc)
        sock.sendall(reply)

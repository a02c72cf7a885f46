"""Decode, detect and align in worker processes: photos side by side on every core (issue 17).

Threads cannot run two photos side by side: the Python between the C calls (letterbox, anchor decoding,
landmark mapping, quality) holds the GIL, and on 2 cores two single-thread pipelines in threads of one process
reach 0.65-0.84 of twice one pipeline's rate (five runs), two processes 0.87, 0.91 and 1.2 (three runs;
the single pipeline they are compared with drifts by ±20 % on this machine).
So the server hands each photo's bytes to one of ``processes`` workers, each with its own single-thread
pipeline, and gets back the faces, the aligned 112×112 crops and, when asked (``/identify`` embeds every face
it finds), their embeddings: one photo's whole pipeline in one process, as the single-thread unit runs it.
Embedding in the calling process instead (batched across requests) cost 49-56 ms of CPU per face there
against 40 ms in the unit's loop on the same machine (SFace on AVX2: a batch of 32 costs as much per face
as a batch of 1, so batching gains nothing on CPU), and moved 37 MB of weights through a third process's
caches.

The decode memory budget is shared by the workers (a ``MemoryBudget`` made with the pool's multiprocessing
context): the same bound as threads had.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from models.face import Face
from models.images import MemoryBudget

_worker: dict = {}


def _init(pack: str, providers: list[str] | None, policy, budget: MemoryBudget, barrier) -> None:
    from models.images import return_freed_memory_promptly
    from models.pipeline import FacePipeline

    return_freed_memory_promptly()
    _worker["pipeline"] = FacePipeline.from_pack(pack, providers=providers, threads=1)
    _worker["policy"], _worker["budget"], _worker["barrier"] = policy, budget, barrier


def _analyse(
    data: bytes, max_faces: int | None, limits: dict, embed: bool
) -> tuple[list[Face], np.ndarray, tuple[int, int], np.ndarray | None, list | None]:
    from models.detectors.policy import analyse_photo
    from models.quality import assess

    pipeline = _worker["pipeline"]
    faces, crops, full = analyse_photo(pipeline, data, _worker["policy"], max_faces=max_faces,
                                       budget=_worker["budget"], **limits)
    if not (embed and len(crops)):
        return faces, crops, full, None, None
    qualities = [assess(face, crop) for face, crop in zip(faces, crops, strict=True)]
    return faces, crops, full, pipeline.embed_crops(crops), qualities


def _ready(timeout: float) -> int:
    _worker["barrier"].wait(timeout)  # every worker holds one of these tasks: all have started
    return os.getpid()


def pool_context():
    """The analysis workers' multiprocessing context: spawn (ONNX Runtime sessions must not cross a fork)."""
    return multiprocessing.get_context("spawn")


class AnalysisPool:
    """``processes`` worker processes that run ``analyse_photo`` for one pack."""

    def __init__(
        self, pack: str | Path, providers: list[str] | None, processes: int, policy,
        budget: MemoryBudget,
    ) -> None:
        """``budget``: made with ``pool_context()``, so that every worker charges the same one."""
        self._context = pool_context()
        self.processes = max(1, int(processes))
        self.budget = budget
        self._initargs = (str(pack), providers, policy, self.budget, self._context.Barrier(self.processes))
        self._executor = self._new_executor()
        self.generation = 0  # bumped by each restart

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes, mp_context=self._context, initializer=_init, initargs=self._initargs
        )

    def restart(self, generation: int) -> None:
        """Replace the pool of ``generation`` once it broke (a worker died, e.g. killed for memory): later
        photos go to new workers. Requests that saw the same break call this too; only the first replaces."""
        if generation != self.generation:
            return
        old, self._executor = self._executor, self._new_executor()
        self.generation += 1
        old.shutdown(wait=False, cancel_futures=True)

    def start(self, timeout: float = 120.0) -> list[int]:
        """Start every worker now (loading its models) rather than on the first photos; their pids."""
        futures = [self._executor.submit(_ready, timeout) for _ in range(self.processes)]
        done, pending = wait(futures, timeout=timeout + 5)
        if pending:
            raise TimeoutError(f"analysis workers not ready after {timeout:.0f} s")
        return sorted(f.result() for f in done)

    def submit(self, data: bytes, max_faces: int | None = None, *, embed: bool = False, **limits) -> Future:
        """A future of ``(faces in full-resolution coordinates, aligned crops, (width, height), embeddings,
        qualities)``; ``embed``: every crop embedded and its quality assessed in the worker (else None)."""
        return self._executor.submit(_analyse, data, max_faces, limits, embed)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

"""Thread topology: ONNX Runtime threads per session and how many pipelines run side by side.

MarginFace's models are small (YuNet 0.2 MB, SFace 37 MB, SCRFD-10G 17 MB, R50 ~170 MB): splitting one
forward pass over several cores costs more in synchronisation than it gains (measured on 2 cores, the
default pack does 25.1 photos/s on 1 thread and 19.4 on 2, issue 17; ``bench/bench_throughput.py``).
So by default every session runs on the calling thread (1 intra-op thread, which lets concurrent
``session.run`` calls on one shared session proceed in parallel) and one pipeline runs per core. Only
models past ``SPLIT_MODEL_BYTES`` (e.g. ResNet-100, ~250 MB) get 2 threads per session, and then half as
many pipelines.

OpenCV has its own thread pool (resize, warpAffine, colour conversion run on every core by default): one
pipeline per core must keep OpenCV to its own thread too, or the pipelines oversubscribe the cores. Measured
on 2 cores (LFW photos, default pack): two single-thread pipelines in two processes ran at 0.84 of twice one
pipeline's rate with OpenCV's default threads and at 1.00 with ``limit_opencv_threads(1)``.

Overrides: ``MARGINFACE_ONNX_THREADS`` (intra-op threads per session) and ``MARGINFACE_PIPELINES``
(parallel pipelines: server detection workers and embedding workers, CLI bulk workers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_THREADS = "MARGINFACE_ONNX_THREADS"
ENV_PIPELINES = "MARGINFACE_PIPELINES"
SPLIT_MODEL_BYTES = 200 * 1024 * 1024  # below this a forward pass is too short to split over cores


@dataclass(frozen=True)
class Topology:
    """``threads``: intra-op threads per ORT session; ``pipelines``: pipelines running side by side."""

    threads: int
    pipelines: int
    cores: int
    reason: str

    def as_dict(self) -> dict:
        return {"threads": self.threads, "pipelines": self.pipelines, "cores": self.cores, "why": self.reason}


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_topology(
    model_bytes: int,
    *,
    cores: int | None = None,
    threads: int | None = None,
    pipelines: int | None = None,
    gpu: bool = False,
) -> Topology:
    """The topology for models of ``model_bytes`` in total on ``cores`` CPUs.

    Explicit ``threads``/``pipelines`` (arguments, else the environment) win; the other is derived so
    that threads × pipelines = cores. On a GPU provider the pipelines only feed the device: one per core
    for decode/detect, sessions left at ORT's default threads.
    """
    cores = max(1, int(cores or available_cores()))
    threads = threads if threads is not None else _env_int(ENV_THREADS)
    pipelines = pipelines if pipelines is not None else _env_int(ENV_PIPELINES)
    if threads is not None and pipelines is not None:
        return Topology(threads, pipelines, cores, "set explicitly")
    if threads is not None:
        return Topology(threads, max(1, cores // threads), cores, f"{threads} thread(s) set: cores / threads")
    if gpu:
        return Topology(1, pipelines or cores, cores, "GPU provider: one CPU pipeline per core feeds it")
    split = 2 if model_bytes >= SPLIT_MODEL_BYTES and cores >= 4 else 1
    if pipelines is not None:
        return Topology(max(1, cores // pipelines), pipelines, cores, f"{pipelines} pipeline(s) set")
    size = f"{model_bytes / 2**20:.0f} MB of models"
    if split == 1:
        return Topology(1, cores, cores, f"{size}: too small to split, one single-thread pipeline per core")
    return Topology(split, max(1, cores // split), cores, f"{size}: {split} threads per session")


def limit_opencv_threads(threads: int) -> None:
    """Keep OpenCV's own parallel loops to ``threads`` in this process (it is process-wide): call it where
    several pipelines run side by side, with the topology's threads per pipeline."""
    import cv2

    cv2.setNumThreads(max(1, int(threads)))


def apply_topology(topology: Topology) -> None:
    """Process-wide settings that follow from ``topology``: OpenCV's threads when pipelines share cores."""
    if topology.pipelines > 1:
        limit_opencv_threads(topology.threads)


def pack_model_bytes(pack_dir: str | Path, manifest) -> int:
    """Total size of a pack's detector and recogniser files (the cost proxy for one photo)."""
    total = 0
    for role in ("detector", "recogniser"):
        try:
            total += (Path(pack_dir) / manifest.model(role).file).stat().st_size
        except (OSError, KeyError, AttributeError):
            continue
    return total


def topology_for_pack(
    name_or_path: str | Path = "default", providers: list[str] | str | None = None, **overrides
) -> Topology:
    """``choose_topology`` for an installed pack (by name or folder)."""
    from models.packs.store import resolve_pack

    pack_dir, manifest = resolve_pack(name_or_path, verify=False)
    return choose_topology(pack_model_bytes(pack_dir, manifest), gpu=_wants_gpu(providers), **overrides)


def _wants_gpu(providers: list[str] | str | None) -> bool:
    if providers is None:
        providers = os.environ.get("MARGINFACE_PROVIDERS", "")
    text = ",".join(providers) if isinstance(providers, list) else str(providers)
    return any(k in text.lower() for k in ("cuda", "tensorrt", "trt", "rocm", "dml", "coreml"))


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a positive integer, not {value!r}") from exc
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return number

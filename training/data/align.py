"""Detect and align raw photos into 112×112 training crops, in parallel (``marginface data align``).

``SRC/<identity>/<photo>`` → ``DST/<identity>/<photo stem>.jpg`` (the relative folder structure is
kept). The largest detected face of each photo is aligned to the ArcFace template with the inference
core (``models``). Each worker process builds its own pipeline. Photos without a face and unreadable
files are skipped and listed in ``DST/align_misses.txt``; ``DST/align_report.json`` holds the summary.
Existing crops are kept (an interrupted run resumes) unless ``overwrite``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from training.data.errors import DatasetError
from training.data.images import CROP_SIZE, IMAGE_EXTENSIONS

REPORT_NAME = "align_report.json"
MISSES_NAME = "align_misses.txt"

_PIPELINE: Any = None  # one per worker process


def _init_worker(pack: str) -> None:
    global _PIPELINE
    from models.pipeline import FacePipeline
    from models.topology import limit_opencv_threads

    limit_opencv_threads(1)  # one single-thread pipeline per worker process, OpenCV included
    _PIPELINE = FacePipeline.from_pack(pack, threads=1)


def align_one(src: Path, dst: Path, jpeg_quality: int = 95) -> tuple[str, int, str]:
    """Align the largest face of ``src`` into ``dst``; returns (status, faces found, message)."""
    import cv2

    from models.align import norm_crop
    from models.errors import InvalidImageError
    from models.images import read_image
    from models.pipeline import select_face

    try:
        image = read_image(src)
    except InvalidImageError as exc:
        return "unreadable", 0, f"{exc.code}: {exc}"
    faces = _PIPELINE.detect(image)
    if not faces:
        return "no_face", 0, ""
    crop = norm_crop(image, select_face(faces).landmarks, CROP_SIZE)
    ok, buffer = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        return "unreadable", len(faces), "cannot encode the crop"
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    tmp.write_bytes(buffer.tobytes())
    os.replace(tmp, dst)  # a crop is either complete or absent
    return "aligned", len(faces), ""


def _align_task(task: tuple[str, str, int]) -> tuple[str, int, str]:
    src, dst, quality = task
    try:
        return align_one(Path(src), Path(dst), quality)
    except Exception as exc:  # one bad photo must not stop a long run; it is reported
        return "failed", 0, f"{type(exc).__name__}: {exc}"


def list_photos(src: Path) -> list[Path]:
    """Image files under ``src`` (recursive, sorted), relative to ``src``."""
    files = (p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return sorted(p.relative_to(src) for p in files)


def _check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise DatasetError(f"source folder not found: {src}", "dataset_not_found")
    src_r, dst_r = src.resolve(), dst.resolve()
    if src_r == dst_r or src_r in dst_r.parents or dst_r in src_r.parents:
        raise DatasetError(f"destination {dst} must not be inside the source {src} or hold it", "bad_output")


def align_folder(
    src: str | Path,
    dst: str | Path,
    pack: str = "default",
    workers: int | None = None,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    progress: bool = True,
) -> dict[str, Any]:
    """Align every photo of ``src`` into ``dst``; returns the summary (also in ``align_report.json``)."""
    from tqdm import tqdm

    from models.packs.store import resolve_pack

    src, dst = Path(src), Path(dst)
    _check_folders(src, dst)
    resolve_pack(pack, verify=True)  # a clear error before any worker starts
    photos = list_photos(src)
    if not photos:
        raise DatasetError(f"{src}: no images found", "empty_dataset")
    dst.mkdir(parents=True, exist_ok=True)
    if workers is None:  # issue 17: one single-thread pipeline per core (models/topology.py)
        from models.topology import topology_for_pack

        workers = topology_for_pack(pack).pipelines
    workers = max(1, workers)
    statuses: Counter[str] = Counter()
    misses: list[str] = []
    multi_face = 0
    tasks = []
    for rel in photos:
        out = dst / rel.with_suffix(".jpg")
        if out.exists() and not overwrite:
            statuses["kept_existing"] += 1
        else:
            tasks.append((str(src / rel), str(out), jpeg_quality))
    start = time.perf_counter()
    with tqdm(total=len(tasks), desc="aligning", unit="img", disable=not progress) as bar:
        if workers == 1 or len(tasks) <= 1:
            _init_worker(pack)
            multi_face = _collect(map(_align_task, tasks), tasks, src, statuses, misses, bar)
        else:
            context = multiprocessing.get_context("spawn")  # no inherited threads or ORT state
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_worker, initargs=(pack,)
            ) as pool:
                results = pool.map(_align_task, tasks, chunksize=8)
                multi_face = _collect(results, tasks, src, statuses, misses, bar)
    summary = {
        "source": str(src),
        "destination": str(dst),
        "pack": pack,
        "photos": len(photos),
        "aligned": statuses["aligned"],
        "kept_existing": statuses["kept_existing"],
        "no_face": statuses["no_face"],
        "unreadable": statuses["unreadable"],
        "failed": statuses["failed"],
        "several_faces_largest_kept": multi_face,
        "identities": sum(1 for p in dst.iterdir() if p.is_dir() and any(p.iterdir())),
        "workers": workers,
        "seconds": round(time.perf_counter() - start, 1),
        "misses_file": str(dst / MISSES_NAME),
    }
    (dst / MISSES_NAME).write_text("".join(line + "\n" for line in misses))
    (dst / REPORT_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _collect(results, tasks, src: Path, statuses: Counter, misses: list[str], bar) -> int:
    """Tally worker results in task order; returns how many photos had more than one face."""
    multi_face = 0
    for (src_path, _, _), (status, n_faces, message) in zip(tasks, results, strict=True):
        statuses[status] += 1
        multi_face += n_faces > 1
        if status != "aligned":
            rel = Path(src_path).relative_to(src)
            misses.append(f"{status}\t{rel}" + (f"\t{message}" if message else ""))
        bar.update(1)
    return multi_face

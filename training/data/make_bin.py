"""Build an insightface verification ``.bin`` from an LFW-style pairs file and a folder of images.

Images that are already 112×112 are taken as aligned crops and stored as they are (no re-encoding).
Other images are detected with the inference core and the chosen face (``largest`` box, or ``central``:
nearest the image centre, which is the named person in LFW) is aligned to 112×112. Images where no face
is found are aligned with the mean landmarks of the detected faces of images of the same size (LFW
images are funnelled, so the person sits at the same place in all of them), or, when no such image
exists, the central square is resized. Every such image is reported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.data.errors import DatasetError
from training.data.images import CROP_SIZE, encode_image
from training.data.verification_bin import write_bin

FACE_CHOICES = ("largest", "central")


@dataclass
class _Prepared:
    status: str  # already_aligned, detected, no_face, unreadable
    encoded: bytes | None = None
    landmarks: np.ndarray | None = None
    shape: tuple[int, int] | None = None
    error: str = ""


def read_pairs_file(pairs_path: str | Path, images_dir: str | Path) -> list[tuple[Path, Path, bool]]:
    """(path1, path2, issame) of an LFW-format pairs file (parsed by ``models.evaluation.lfw``)."""
    from models.errors import MarginFaceError
    from models.evaluation.lfw import read_pairs

    try:
        pairs = read_pairs(pairs_path, images_dir)
    except MarginFaceError as exc:
        raise DatasetError(str(exc), "bad_pairs") from exc
    return [(Path(p1), Path(p2), bool(same)) for p1, p2, same, *_ in pairs]


def _choose(faces, shape: tuple[int, int], face: str):
    from models.evaluation.pairs_runner import central_face
    from models.pipeline import select_face

    return central_face(faces, *shape) if face == "central" else select_face(faces)


def _central_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[top : top + side, left : left + side], (CROP_SIZE, CROP_SIZE))


def make_verification_bin(
    images_dir: str | Path,
    pairs_path: str | Path,
    out: str | Path,
    pack: str = "default",
    face: str = "largest",
    workers: int = 2,
    jpeg_quality: int = 95,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (.bin) for the pairs of ``pairs_path``; returns a summary with the per-image outcomes."""
    from tqdm import tqdm

    from models.align import norm_crop
    from models.errors import InvalidImageError
    from models.images import read_image

    if face not in FACE_CHOICES:
        raise ValueError(f"face must be one of {FACE_CHOICES}")
    start = time.perf_counter()
    pairs = read_pairs_file(pairs_path, images_dir)
    paths = list(dict.fromkeys(p for pair in pairs for p in pair[:2]))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} image(s) of the pairs file are missing, e.g. {missing[:3]}", "dataset_not_found"
        )
    lock, loaded = threading.Lock(), []

    def pipeline():  # loaded on first need: a folder of 112×112 crops needs no model pack
        with lock:
            if not loaded:
                from models.pipeline import FacePipeline

                loaded.append(FacePipeline.from_pack(pack))
            return loaded[0]

    def prepare(path: Path) -> _Prepared:
        try:
            image = read_image(path)
        except InvalidImageError as exc:
            return _Prepared("unreadable", error=f"{exc.code}: {exc}")
        if image.shape[:2] == (CROP_SIZE, CROP_SIZE):
            return _Prepared("already_aligned", encoded=path.read_bytes())
        faces = pipeline().detect(image)
        if not faces:
            return _Prepared("no_face", shape=image.shape[:2])
        landmarks = _choose(faces, image.shape[:2], face).landmarks
        encoded = encode_image(norm_crop(image, landmarks, CROP_SIZE), ".jpg", jpeg_quality)
        return _Prepared("detected", encoded, landmarks, image.shape[:2])

    with tqdm(total=len(paths), desc="preparing pair images", unit="img", disable=not progress) as bar:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            prepared: dict[Path, _Prepared] = {}
            for path, result in zip(paths, pool.map(prepare, paths), strict=True):
                prepared[path] = result
                bar.update(1)
    unreadable = {str(p): r.error for p, r in prepared.items() if r.status == "unreadable"}
    if unreadable:
        examples = list(unreadable.items())[:3]
        raise DatasetError(f"{len(unreadable)} unreadable image(s), e.g. {examples}", "corrupt_image")
    _fill_misses(prepared, jpeg_quality)
    write_bin(out, [prepared[p].encoded for pair in pairs for p in pair[:2]], [pair[2] for pair in pairs])
    counts = Counter(r.status for r in prepared.values())
    return {
        "out": str(out),
        "pairs": len(pairs),
        "same_pairs": sum(pair[2] for pair in pairs),
        "images": len(paths),
        "face": face,
        "already_aligned": counts["already_aligned"],
        "detected": counts["detected"],
        "no_face_mean_landmarks": counts["fallback_mean_landmarks"],
        "no_face_center_crop": counts["fallback_center_crop"],
        "no_face_images": sorted(str(p) for p, r in prepared.items() if r.status.startswith("fallback")),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _fill_misses(prepared: dict[Path, _Prepared], jpeg_quality: int) -> None:
    """Align images without a detected face with the mean landmarks of same-size images, else centre-crop."""
    from models.align import norm_crop
    from models.images import read_image

    by_shape: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for result in prepared.values():
        if result.status == "detected":
            by_shape[result.shape].append(result.landmarks)
    for path, result in prepared.items():
        if result.status != "no_face":
            continue
        image = read_image(path)
        if by_shape.get(result.shape):
            mean = np.mean(by_shape[result.shape], axis=0).astype(np.float32)
            crop, result.status = norm_crop(image, mean, CROP_SIZE), "fallback_mean_landmarks"
        else:
            crop, result.status = _central_square(image), "fallback_center_crop"
        result.encoded = encode_image(crop, ".jpg", jpeg_quality)

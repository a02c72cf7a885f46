"""Run the inference pipeline over the images of a pair list and score the pairs (1:1 verification).

Each distinct image is decoded, detected, aligned and embedded once. The face used is the one whose box
centre is nearest the image centre (LFW centres the named person). Images where no face is found are, by
default, aligned with the mean landmarks of the faces detected in the other images of the same size
(deep-funneled LFW images are already aligned, so the person sits at the same place in all of them);
with ``no_face="reject"`` their pairs are scored as non-matches (similarity −1). Unreadable images are
always scored as non-matches. Both counts are reported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import InvalidImageError
from models.evaluation.metrics import DEFAULT_FARS, VerificationResult, evaluate_verification
from models.face import Face
from models.images import read_image

NO_FACE_POLICIES = ("mean-landmarks", "reject")


@dataclass
class ImageResult:
    """Outcome for one image: ``status`` is detected, fallback, no_face or unreadable."""

    embedding: np.ndarray | None
    status: str
    landmarks: np.ndarray | None = None
    shape: tuple[int, int] | None = None
    error: str | None = None


def central_face(faces: list[Face], height: int, width: int) -> Face:
    """The face whose box centre is nearest the image centre."""
    centre = np.array([width / 2.0, height / 2.0], dtype=np.float32)
    return min(faces, key=lambda f: float(np.sum(((f.box[:2] + f.box[2:]) / 2.0 - centre) ** 2)))


def embed_images(
    pipeline,
    paths: list[Path],
    *,
    flip: bool = False,
    workers: int = 1,
    no_face: str = "mean-landmarks",
    progress: bool = True,
) -> dict[Path, ImageResult]:
    """Embed each image's central face; see the module docstring for images without a face."""
    from tqdm import tqdm

    if no_face not in NO_FACE_POLICIES:
        raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}")

    def one(path: Path) -> ImageResult:
        try:
            image = read_image(path)
        except InvalidImageError as exc:
            return ImageResult(None, "unreadable", error=f"{exc.code}: {exc}")
        faces = pipeline.detect(image)
        if not faces:
            return ImageResult(None, "no_face", shape=image.shape[:2])
        face = central_face(faces, *image.shape[:2])
        embedding = pipeline.embed_faces(image, [face], flip=flip)[0]
        return ImageResult(embedding, "detected", landmarks=face.landmarks, shape=image.shape[:2])

    results: dict[Path, ImageResult] = {}
    with tqdm(total=len(paths), desc="embedding images", unit="img", disable=not progress) as bar:
        with ThreadPoolExecutor(max_workers=max(int(workers), 1)) as pool:
            for path, result in zip(paths, pool.map(one, paths), strict=True):
                results[path] = result
                bar.update(1)
    if no_face == "mean-landmarks":
        _fallback_align(pipeline, results, flip)
    return results


def _fallback_align(pipeline, results: dict[Path, ImageResult], flip: bool) -> None:
    by_shape: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for result in results.values():
        if result.status == "detected":
            by_shape[result.shape].append(result.landmarks)
    for path, result in results.items():
        if result.status != "no_face" or not by_shape.get(result.shape):
            continue
        landmarks = np.mean(by_shape[result.shape], axis=0).astype(np.float32)
        image = read_image(path)
        crop = pipeline.align(image, [Face(box=np.zeros(4, np.float32), score=0.0, landmarks=landmarks)])
        result.embedding = pipeline.embed_crops(crop, flip=flip)[0]
        result.landmarks = landmarks
        result.status = "fallback"


def evaluate_pairs(
    pipeline,
    pairs: list[tuple],
    *,
    flip: bool = False,
    workers: int = 1,
    no_face: str = "mean-landmarks",
    n_folds: int = 10,
    fars=DEFAULT_FARS,
    progress: bool = True,
) -> VerificationResult:
    """The verification protocol end to end over ``pairs`` of ``(path1, path2, issame, fold)``."""
    start = time.perf_counter()
    paths = sorted({Path(p) for pair in pairs for p in pair[:2]})
    results = embed_images(pipeline, paths, flip=flip, workers=workers, no_face=no_face, progress=progress)
    scores = np.empty(len(pairs), dtype=np.float64)
    unscored = 0
    for k, (p1, p2, *_rest) in enumerate(pairs):
        e1, e2 = results[Path(p1)].embedding, results[Path(p2)].embedding
        if e1 is None or e2 is None:
            scores[k] = -1.0  # scored as a non-match
            unscored += 1
        else:
            scores[k] = float(np.dot(e1, e2))
    issame = np.array([bool(pair[2]) for pair in pairs])
    result = evaluate_verification(scores, issame, n_folds, fars)
    counts = defaultdict(int)
    for r in results.values():
        counts[r.status] += 1
    affected = sum(
        1
        for p1, p2, *_ in pairs
        if results[Path(p1)].status != "detected" or results[Path(p2)].status != "detected"
    )
    elapsed = time.perf_counter() - start
    result.extra = {
        "images": len(paths),
        "images_detected": counts["detected"],
        "images_fallback_aligned": counts["fallback"],
        "images_no_face": counts["no_face"],
        "images_unreadable": counts["unreadable"],
        "pairs_with_fallback_or_failure": affected,
        "pairs_scored_as_nonmatch_for_failure": unscored,
        "no_face_policy": no_face,
        "flip": flip,
        "wall_time_s": round(elapsed, 1),
        "images_per_s": round(len(paths) / elapsed, 2) if elapsed > 0 else None,
        "failures": sorted(str(p) for p, r in results.items() if r.status != "detected")[:50],
    }
    return result

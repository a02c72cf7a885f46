"""IJB-B / IJB-C 1:1 template verification as insightface's ``eval_ijbc.py`` computes it.

Reads the official meta files of ``ROOT`` (insightface's layout: ``ROOT/meta/<set>_face_tid_mid.txt``,
``<set>_template_pair_label.txt``, ``<set>_name_5pts_score.txt``, crops in ``ROOT/loose_crop/``), aligns
each loose crop with its five landmarks to the 112×112 ArcFace template, embeds it (and its mirror: each
view L2-normalised, then summed), weights it by its face score, pools images into media (mean) and media
into templates (sum, then L2-normalised), scores every template pair by cosine, and reports TAR at
FAR 1e-6 … 1e-1 and the ROC. Mode in insightface's terms: F1 (flip), D1 (detector score), N0 (unit views).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import MarginFaceError

FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
Embed = Callable[[np.ndarray], np.ndarray]


class IJBError(MarginFaceError):
    """Missing or malformed IJB meta files (``bad_ijb``)."""

    code = "bad_ijb"


@dataclass
class IJBMeta:
    names: list[str]  # image file names in loose_crop/
    templates: np.ndarray  # template id per image
    medias: np.ndarray  # media id per image
    landmarks: np.ndarray  # N×5×2 in loose-crop pixels
    scores: np.ndarray  # face (detector) score per image
    pairs: np.ndarray  # P×2 template ids
    labels: np.ndarray  # P, 1 = same person


def _lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise IJBError(f"IJB meta file not found: {path}")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def read_meta(root: str | Path, name: str = "ijbc") -> IJBMeta:
    """The three meta files of set ``name`` (ijbb / ijbc) under ``root/meta``."""
    meta = Path(root) / "meta"
    prefix = name.lower()
    tid_mid = _lines(meta / f"{prefix}_face_tid_mid.txt")
    points = {row[0]: row[1:] for row in _lines(meta / f"{prefix}_name_5pts_score.txt")}
    pairs = _lines(meta / f"{prefix}_template_pair_label.txt")
    try:
        names = [row[0] for row in tid_mid]
        templates = np.array([int(row[1]) for row in tid_mid], dtype=np.int64)
        medias = np.array([int(row[2]) for row in tid_mid], dtype=np.int64)
        values = np.array([[float(v) for v in points[n][:11]] for n in names], dtype=np.float32)
        pair_array = np.array([[int(r[0]), int(r[1])] for r in pairs], dtype=np.int64)
        labels = np.array([int(r[2]) for r in pairs], dtype=np.int64)
    except (KeyError, IndexError, ValueError) as exc:
        raise IJBError(f"malformed IJB meta files in {meta}: {exc}") from exc
    if values.shape[1] != 11:
        raise IJBError(f"{prefix}_name_5pts_score.txt: expected 10 landmark values and a score per line")
    unknown = set(pair_array.ravel().tolist()) - set(templates.tolist())
    if unknown:
        raise IJBError(f"pairs name templates without images: {sorted(unknown)[:5]}")
    return IJBMeta(
        names, templates, medias, values[:, :10].reshape(-1, 5, 2), values[:, 10], pair_array, labels
    )


def aligned_crops(root: str | Path, meta: IJBMeta, size: int = 112) -> np.ndarray:
    """N×size×size×3 BGR crops aligned with the meta landmarks."""
    import cv2

    from models.align import norm_crop

    folder = Path(root) / "loose_crop"
    out = np.empty((len(meta.names), size, size, 3), dtype=np.uint8)
    for i, name in enumerate(meta.names):
        image = cv2.imread(str(folder / name))
        if image is None:
            raise IJBError(f"cannot read {folder / name}")
        out[i] = norm_crop(image, meta.landmarks[i], size)
    return out


def image_features(crops: np.ndarray, embed: Embed, flip: bool = True, batch: int = 64) -> np.ndarray:
    """Per image: unit embedding, plus the mirrored crop's unit embedding when ``flip``."""
    parts = []
    for start in range(0, len(crops), batch):
        chunk = crops[start : start + batch]
        feats = _unit(embed(chunk))
        if flip:
            feats = feats + _unit(embed(np.ascontiguousarray(chunk[:, :, ::-1])))
        parts.append(feats)
    return np.concatenate(parts).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def template_features(
    feats: np.ndarray, templates: np.ndarray, medias: np.ndarray, scores: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(template ids, unit template features): images weighted by score, mean per media, sum of media."""
    weighted = feats * scores[:, None] if scores is not None else feats
    ids = np.unique(templates)
    out = np.zeros((len(ids), feats.shape[1]), dtype=np.float64)
    for row, template in enumerate(ids):
        mask = templates == template
        for media in np.unique(medias[mask]):
            out[row] += weighted[mask & (medias == media)].mean(axis=0)
    return ids, _unit(out).astype(np.float32)


def pair_scores(ids: np.ndarray, feats: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    lookup = {int(t): i for i, t in enumerate(ids)}
    a = feats[[lookup[int(t)] for t in pairs[:, 0]]]
    b = feats[[lookup[int(t)] for t in pairs[:, 1]]]
    return (a * b).sum(axis=1)


def roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, highest threshold first, from (0, 0)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(bool)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each distinct score
    tps, fps = np.cumsum(y)[last], np.cumsum(~y)[last]
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / neg], np.r_[0.0, tps / pos], np.r_[np.inf, s[last]]


def tar_at_far(labels: np.ndarray, scores: np.ndarray, fars=FARS) -> dict[str, float | None]:
    """TAR at the highest threshold whose FAR does not exceed each target; None when the set has too
    few impostor pairs to measure that FAR."""
    fpr, tpr, _ = roc(labels, scores)
    negatives = int((labels == 0).sum())
    out: dict[str, float | None] = {}
    for far in fars:
        if negatives * far < 1:
            out[f"{far:g}"] = None
            continue
        out[f"{far:g}"] = float(tpr[fpr <= far].max())
    return out


def evaluate_ijb(
    root: str | Path,
    embed: Embed,
    name: str = "ijbc",
    *,
    flip: bool = True,
    face_score: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The TAR@FAR table, pair scores and ROC of set ``name`` under ``root``."""
    meta = read_meta(root, name)
    if progress:
        progress(
            f"{len(meta.names)} images, {len(np.unique(meta.templates))} templates, {len(meta.pairs)} pairs"
        )
    crops = aligned_crops(root, meta)
    feats = image_features(crops, embed, flip=flip)
    ids, tfeats = template_features(feats, meta.templates, meta.medias, meta.scores if face_score else None)
    scores = pair_scores(ids, tfeats, meta.pairs)
    fpr, tpr, thresholds = roc(meta.labels, scores)
    return {
        "set": name,
        "images": len(meta.names),
        "templates": int(len(ids)),
        "pairs": int(len(meta.pairs)),
        "genuine": int(meta.labels.sum()),
        "mode": {"flip": flip, "face_score": face_score},
        "tar_at_far": tar_at_far(meta.labels, scores),
        "scores": scores,
        "roc": {"fpr": fpr, "tpr": tpr, "thresholds": thresholds},
    }

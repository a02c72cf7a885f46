"""Verification with a PyTorch backbone: ``.bin`` sets (pairs of aligned crops) and the LFW protocol
metrics of ``models.evaluation`` (10-fold accuracy, ROC, TAR and threshold at each FAR), plus plots."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.errors import MarginFaceError
from models.evaluation.metrics import evaluate_verification, roc
from training.evaluation.embed import embed_crops


class EvalSetError(MarginFaceError):
    """A verification set that cannot be used (``bad_eval_set``)."""

    code = "bad_eval_set"


def load_bin(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(BGR 112×112 crops, issame) from an insightface-style ``.bin``; pairs are consecutive images."""
    from training.data import read_bin

    path = Path(path)
    if not path.is_file():
        raise EvalSetError(f"verification set not found: {path}", "eval_set_not_found")
    images, issame = read_bin(path)
    issame = np.asarray(issame, dtype=bool)
    if len(images) != 2 * len(issame):
        raise EvalSetError(f"{path}: {len(images)} images for {len(issame)} pairs (need 2 per pair)")
    return images, issame


def unique_crops(images: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """(distinct crops, index of each image's crop): pair sets reuse images (LFW: 7,701 of 12,000)."""
    first: dict[bytes, int] = {}
    inverse = np.empty(len(images), dtype=np.int64)
    distinct: list[np.ndarray] = []
    for k, image in enumerate(images):
        key = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()
        if key not in first:
            first[key] = len(distinct)
            distinct.append(image)
        inverse[k] = first[key]
    return distinct, inverse


def embed_bin_images(embed: Callable[[list[np.ndarray]], np.ndarray], images: list[np.ndarray]) -> np.ndarray:
    """Embeddings of every image of a set, each distinct crop embedded once."""
    distinct, inverse = unique_crops(images)
    return embed(distinct)[inverse]


def pair_cosines(embeddings: np.ndarray) -> np.ndarray:
    """Cosine of each consecutive pair (0,1), (2,3), … of unit-norm embeddings."""
    return np.sum(embeddings[0::2] * embeddings[1::2], axis=1).astype(np.float64)


def roc_auc(cos: np.ndarray, issame: np.ndarray) -> float:
    """Area under the ROC (TAR over FAR from 0 to 1): threshold-free, so it still separates models whose
    pair distances all fall inside one 0.01 step of the protocol's threshold grid (barely trained ones)."""
    far, tar, _ = roc(cos, issame)
    far, tar = np.r_[0.0, far], np.r_[0.0, tar]
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def verification_report(cos: np.ndarray, issame: np.ndarray, n_folds: int = 10) -> dict[str, Any]:
    """The protocol's numbers as a JSON-ready dict (accuracy in [0, 1], thresholds as cosines), plus the
    ROC AUC and the spread of pair similarities."""
    report = evaluate_verification(cos, issame, n_folds).to_dict()
    same = np.asarray(issame, dtype=bool)
    report["roc_auc"] = roc_auc(cos, same)
    report["mean_cosine_same"] = float(cos[same].mean()) if same.any() else None
    report["mean_cosine_different"] = float(cos[~same].mean()) if (~same).any() else None
    return report


def write_plots(cos: np.ndarray, issame: np.ndarray, plots_dir: Path, name: str) -> list[str]:
    from training.evaluation.plots import plot_roc, plot_similarity_histograms

    plots_dir.mkdir(parents=True, exist_ok=True)
    far, tar, _ = roc(cos, issame)
    return [
        str(plot_roc(far, tar, plots_dir / f"{name}_roc.png", f"{name}: ROC")),
        str(
            plot_similarity_histograms(
                cos, issame, plots_dir / f"{name}_similarity.png", f"{name}: cosine similarity of pairs"
            )
        ),
    ]


def evaluate_bin(
    backbone: nn.Module,
    bin_path: str | Path,
    *,
    flip: bool = True,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    plots_dir: str | Path | None = None,
    name: str | None = None,
    progress: bool = False,
    data: tuple[list[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Embed every image of a ``.bin`` and report the verification protocol (``data`` reuses a loaded set)."""
    images, issame = data if data is not None else load_bin(bin_path)
    name = name or Path(bin_path).stem
    embeddings = embed_bin_images(
        lambda crops: embed_crops(
            backbone, crops, flip=flip, batch_size=batch_size, device=device, progress=progress
        ),
        images,
    )
    cos = pair_cosines(embeddings)
    report = verification_report(cos, issame)
    report.update({"set": name, "flip": flip})
    if plots_dir is not None:
        report["plots"] = write_plots(cos, issame, Path(plots_dir), name)
    return report


def write_json(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float))

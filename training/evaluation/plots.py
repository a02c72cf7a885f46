"""PNG figures of a verification result: the ROC curve and the positive/negative cosine histograms
(as in the X2-Softmax paper's figure 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, path: Path, title: str) -> Path:
    """TAR against FAR on a log FAR axis (FAR = 0 points are dropped)."""
    plt = _pyplot()
    keep = fpr > 0
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot(fpr[keep], tpr[keep], lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("FAR (false accept rate)")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_similarity_histograms(cos: np.ndarray, issame: np.ndarray, path: Path, title: str) -> Path:
    """Two histograms of pair cosine similarity: same-identity (positive) and different (negative)."""
    plt = _pyplot()
    issame = np.asarray(issame, dtype=bool)
    # bins over the data's range: a barely trained model's similarities crowd into a sliver near 1
    lo, hi = float(np.min(cos)), float(np.max(cos))
    pad = max(0.02 * (hi - lo), 1e-4)
    bins = np.linspace(max(-1.0, lo - pad), min(1.0, hi + pad), 81)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.hist(cos[issame], bins=bins, alpha=0.6, density=True, label=f"positive pairs ({issame.sum()})")
    ax.hist(cos[~issame], bins=bins, alpha=0.6, density=True, label=f"negative pairs ({(~issame).sum()})")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""Plots comparing training runs on one verification set: the ROC of every run on one axis, the positive and
negative pair similarities per run (as in the X2-Softmax paper's figure 7), and the training loss curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scores(run: dict) -> tuple[np.ndarray, np.ndarray] | None:
    path = run.get("pair_scores")
    if not path or not Path(path).exists():
        return None
    data = np.load(path)
    return data["cosine"], data["issame"].astype(bool)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def _label(run: dict) -> str:
    from bench.bench_training import loss_label

    return loss_label(run["loss_config"])


def plot_roc(scored: list[tuple[dict, tuple[np.ndarray, np.ndarray]]], path: Path) -> Path:
    """Every run's ROC on one log-FAR axis, the LFW accuracy in the legend."""
    from models.evaluation.metrics import roc

    fig, ax = _pyplot().subplots(figsize=(5.5, 4.2), dpi=120)
    for run, (cos, same) in scored:
        far, tar, _ = roc(cos, same)
        keep = far > 0
        ax.plot(far[keep], tar[keep], lw=1.5, label=f"{_label(run)} ({100 * run['lfw_accuracy']:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("FAR")
    ax.set_ylabel("TAR")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("LFW ROC, MobileFaceNet trained on the CelebA subset")
    return _save(fig, path)


def plot_similarities(scored: list[tuple[dict, tuple[np.ndarray, np.ndarray]]], path: Path) -> Path:
    """Same-person and different-person pair cosines, one panel per run (three per row)."""
    cols = min(3, len(scored))
    rows = -(-len(scored) // cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), dpi=120, squeeze=False)
    bins = np.linspace(-0.4, 1.0, 71)
    for ax, (run, (cos, same)) in zip(axes.flat, scored, strict=False):
        ax.hist(cos[same], bins=bins, alpha=0.6, density=True, label="same person")
        ax.hist(cos[~same], bins=bins, alpha=0.6, density=True, label="different")
        ax.set_title(_label(run), fontsize=9)
        ax.set_xlabel("cosine", fontsize=8)
    for ax in list(axes.flat)[len(scored) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("LFW pair similarities per loss", fontsize=10)
    return _save(fig, path)


def plot_losses(runs: list[dict], run_dirs: list[Path], path: Path) -> Path:
    """Training loss over steps, each divided by its first window (the losses have different scales)."""
    from training.run_log import read_metrics

    fig, ax = _pyplot().subplots(figsize=(5.5, 3.6), dpi=120)
    for run, run_dir in zip(runs, run_dirs, strict=True):
        rows = read_metrics(run_dir)
        losses = np.array([float(r["loss"]) for r in rows])
        ax.plot([int(r["step"]) for r in rows], losses / losses[0], lw=1, label=_label(run))
    ax.set_xlabel("step")
    ax.set_ylabel("loss / first window's loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Training loss (each loss has its own scale)")
    return _save(fig, path)


def plot_runs(runs: list[dict], run_dirs: list[Path], img_dir: Path) -> list[Path]:
    """ROC, similarity histograms and loss curves of ``runs`` (dicts from ``bench_training._read_run``)."""
    img_dir.mkdir(parents=True, exist_ok=True)
    scored = [(r, s) for r in runs if (s := _scores(r)) is not None]
    written = []
    if scored:
        written.append(plot_roc(scored, img_dir / "training_runs_lfw_roc.png"))
        written.append(plot_similarities(scored, img_dir / "training_runs_lfw_similarity.png"))
    written.append(plot_losses(runs, run_dirs, img_dir / "training_runs_loss.png"))
    return written

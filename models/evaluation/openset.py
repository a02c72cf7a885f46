"""Open-set 1:N identification metrics as NIST FRVT 1:N reports them (numpy only).

A gallery of enrolled subjects; mated probes (their subject is enrolled) and non-mated probes (never
enrolled). A search returns candidates whose score is at or above a threshold ``t``.

- FPIR(t): share of non-mated probes that return any candidate, i.e. whose best subject score is ≥ t.
- FNIR(t): share of mated probes whose subject is not returned at rank 1 with a score ≥ t.
- DIR(t) = 1 − FNIR(t) (detection and identification rate); rank-k: closed-set accuracy of mated probes.

``subject_scores`` turns face-level embeddings into a probe × subject matrix (the best face of each
subject, as the server's search does), so every number here matches what ``/identify`` would answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_FPIRS = (0.1, 0.01, 0.001)


def subject_scores(
    gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """(P × S best cosine per subject, the S subject labels in column order) for unit embeddings."""
    labels = np.asarray(gallery_labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    subjects, starts = np.unique(sorted_labels, return_index=True)
    g = np.ascontiguousarray(np.asarray(gallery, np.float32)[order])
    out = np.empty((len(probes), len(subjects)), np.float32)
    for i in range(0, len(probes), chunk):
        sims = np.asarray(probes[i : i + chunk], np.float32) @ g.T
        out[i : i + chunk] = np.maximum.reduceat(sims, starts, axis=1)
    return out, subjects


@dataclass
class OpenSetResult:
    """Open-set identification at several FPIRs, rank-k accuracy and the DET curve."""

    at_fpir: dict[float, dict[str, float]]  # target → threshold, fpir (measured), fnir, dir
    rank_accuracy: dict[int, float]
    mated_probes: int
    non_mated_probes: int
    gallery_subjects: int
    det: dict[str, list[float]] = field(default_factory=dict)  # threshold, fpir, fnir (descending t)
    at_threshold: dict[str, float] | None = None  # the numbers at one given threshold (e.g. a fixed one)

    def to_dict(self, with_curve: bool = False) -> dict:
        body = {
            "gallery_subjects": self.gallery_subjects,
            "mated_probes": self.mated_probes,
            "non_mated_probes": self.non_mated_probes,
            "rank_accuracy": {f"rank{k}": v for k, v in self.rank_accuracy.items()},
            "fnir_at_fpir": {f"{f:g}": v for f, v in self.at_fpir.items()},
        }
        if self.at_threshold is not None:
            body["at_threshold"] = self.at_threshold
        if with_curve:
            body["det"] = self.det
        return body


def threshold_at_fpir(non_mated_best: np.ndarray, fpir: float) -> float | None:
    """Lowest threshold at which at most ``fpir`` of the non-mated probes score ≥ it (None: too few)."""
    scores = np.sort(np.asarray(non_mated_best, np.float64))[::-1]
    allowed = int(np.floor(fpir * len(scores) + 1e-9))
    if len(scores) == 0 or allowed < 1:
        return None
    if allowed >= len(scores):
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def rates_at(
    threshold: float, non_mated_best: np.ndarray, mated_best: np.ndarray, mated_correct: np.ndarray
) -> dict[str, float]:
    """FPIR, FNIR and DIR at one threshold (a search is accepted when its best score is ≥ threshold)."""
    fpir = float(np.mean(non_mated_best >= threshold)) if len(non_mated_best) else float("nan")
    found = mated_correct & (mated_best >= threshold)
    fnir = float(1 - np.mean(found)) if len(found) else float("nan")
    return {"threshold": float(threshold), "fpir": fpir, "fnir": fnir, "dir": 1 - fnir}


def det_curve(
    non_mated_best: np.ndarray, mated_best: np.ndarray, mated_correct: np.ndarray, points: int = 400
) -> dict[str, list[float]]:
    """FPIR and FNIR over thresholds spanning the observed scores (for a DET plot)."""
    every = np.concatenate([non_mated_best, mated_best])
    if len(every) == 0:
        return {"threshold": [], "fpir": [], "fnir": []}
    ts = np.unique(np.quantile(every, np.linspace(0, 1, points)))[::-1]
    nm = np.sort(non_mated_best)
    fpir = 1 - np.searchsorted(nm, ts, side="left") / max(len(nm), 1)
    found_scores = np.sort(mated_best[mated_correct])
    found = (len(found_scores) - np.searchsorted(found_scores, ts, side="left")) / max(len(mated_best), 1)
    return {"threshold": ts.tolist(), "fpir": fpir.tolist(), "fnir": (1 - found).tolist()}


def evaluate_open_set(
    scores: np.ndarray,
    subjects: np.ndarray,
    probe_labels: np.ndarray,
    fpirs: tuple[float, ...] = DEFAULT_FPIRS,
    ranks: tuple[int, ...] = (1, 5, 10),
    threshold: float | None = None,
) -> OpenSetResult:
    """Open-set metrics from a probe × subject score matrix; a probe is mated when its label is a
    gallery subject. FPIRs below 1/(non-mated probes) cannot be resolved and are reported as None."""
    probe_labels = np.asarray(probe_labels)
    mated = np.isin(probe_labels, subjects)
    best_col = np.argmax(scores, axis=1) if scores.shape[1] else np.zeros(len(scores), int)
    best = scores[np.arange(len(scores)), best_col] if scores.shape[1] else np.full(len(scores), -1.0)
    correct = subjects[best_col] == probe_labels if scores.shape[1] else np.zeros(len(scores), bool)
    nm_best, m_best, m_correct = best[~mated], best[mated], correct[mated]
    rank_acc: dict[int, float] = {}
    if mated.any():
        own_col = np.searchsorted(subjects, probe_labels[mated])
        own = scores[mated][np.arange(mated.sum()), own_col]
        better = (scores[mated] > own[:, None]).sum(axis=1)  # rank of the true subject − 1
        rank_acc = {k: float(np.mean(better < k)) for k in ranks}
    at: dict[float, dict[str, float]] = {}
    for f in fpirs:
        t = threshold_at_fpir(nm_best, f)
        at[f] = rates_at(t, nm_best, m_best, m_correct) if t is not None else None  # type: ignore[assignment]
    return OpenSetResult(
        at_fpir=at,
        rank_accuracy=rank_acc,
        mated_probes=int(mated.sum()),
        non_mated_probes=int((~mated).sum()),
        gallery_subjects=int(len(subjects)),
        det=det_curve(nm_best, m_best, m_correct),
        at_threshold=rates_at(threshold, nm_best, m_best, m_correct) if threshold is not None else None,
    )


def det_plot(
    curves: dict[str, dict[str, list[float]]], path: str | Path, marks=None, title: str = ""
) -> Path:
    """DET plot (FNIR vs FPIR, log FPIR axis) of one or more labelled curves; ``marks``: label →
    list of (fpir, fnir, text) points to annotate (e.g. operating points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, curve in curves.items():
        fpir = np.asarray(curve["fpir"])
        keep = fpir > 0
        ax.plot(fpir[keep], np.asarray(curve["fnir"])[keep], label=label)
    for points in (marks or {}).values():
        for fpir, fnir, text in points:
            ax.plot([fpir], [fnir], "o", ms=5)
            ax.annotate(text, (fpir, fnir), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("FPIR (non-mated probes returning a candidate)")
    ax.set_ylabel("FNIR (mated probes not found at rank 1)")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

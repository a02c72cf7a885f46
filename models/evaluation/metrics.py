"""Verification metrics (numpy only): LFW-style k-fold accuracy, ROC and TAR at FAR.

Scores may be cosine similarities (higher = same) or squared-L2 distances between L2-normalised
embeddings (lower = same); ``distance = 2 − 2·cos``. These functions take arrays, not models, so they serve
both the ONNX pipeline and embeddings from a PyTorch model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
LFW_THRESHOLDS = np.arange(0, 4, 0.01)


def to_distance(scores: np.ndarray, kind: str = "similarity") -> np.ndarray:
    """Squared-L2 distances of normalised embeddings from cosine similarities (or pass distances through)."""
    scores = np.asarray(scores, dtype=np.float64)
    if kind == "similarity":
        return 2.0 - 2.0 * scores
    if kind == "distance":
        return scores
    raise ValueError(f"kind must be 'similarity' or 'distance', not {kind!r}")


def kfold_accuracy(
    scores: np.ndarray,
    issame: np.ndarray,
    n_folds: int = 10,
    *,
    kind: str = "similarity",
    thresholds: np.ndarray = LFW_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold accuracy and per-fold best distance threshold (the insightface/LFW protocol).

    Pairs are split into ``n_folds`` consecutive folds (no shuffle). For each fold the distance threshold in
    ``thresholds`` with the best accuracy on the other folds is chosen (the first one on ties) and accuracy
    is measured on the held-out fold with ``same ⇔ distance < threshold``.
    """
    dist = to_distance(scores, kind)
    same = np.asarray(issame, dtype=bool)
    if dist.shape != same.shape or dist.ndim != 1:
        raise ValueError(f"scores {dist.shape} and issame {same.shape} must be equal-length vectors")
    if len(dist) < n_folds:
        raise ValueError(f"{len(dist)} pairs cannot be split into {n_folds} folds")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    # correct[t, i]: pair i is classified correctly at threshold t.
    correct = (dist[None, :] < thresholds[:, None]) == same[None, :]
    folds = np.array_split(np.arange(len(dist)), n_folds)
    accuracy = np.zeros(n_folds)
    best = np.zeros(n_folds)
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(dist)), test, assume_unique=True)
        index = int(np.argmax(correct[:, train].mean(axis=1)))
        best[k] = thresholds[index]
        accuracy[k] = correct[index, test].mean()
    return accuracy, best


def roc(scores: np.ndarray, issame: np.ndarray, *, kind: str = "similarity") -> tuple[np.ndarray, ...]:
    """(far, tar, similarity_thresholds): one point per distinct score, accepting ``similarity ≥ threshold``,
    from the strictest threshold to the loosest."""
    sims = 1.0 - to_distance(scores, kind) / 2.0
    same = np.asarray(issame, dtype=bool)
    order = np.argsort(-sims, kind="stable")
    sims_sorted, same_sorted = sims[order], same[order]
    tp = np.cumsum(same_sorted)
    fp = np.cumsum(~same_sorted)
    last = np.r_[np.nonzero(np.diff(sims_sorted))[0], len(sims_sorted) - 1]  # last index of each score
    n_pos, n_neg = max(int(same.sum()), 1), max(int((~same).sum()), 1)
    return fp[last] / n_neg, tp[last] / n_pos, sims_sorted[last]


def tar_at_far(
    scores: np.ndarray, issame: np.ndarray, fars=DEFAULT_FARS, *, kind: str = "similarity"
) -> dict[float, dict | None]:
    """TAR and the cosine threshold at each FAR (accept ``similarity ≥ threshold``).

    The threshold admits at most ``floor(far · negatives)`` false accepts. A FAR below 1/negatives cannot be
    measured and maps to None.
    """
    sims = 1.0 - to_distance(scores, kind) / 2.0
    same = np.asarray(issame, dtype=bool)
    negatives = np.sort(sims[~same])[::-1]
    positives = sims[same]
    out: dict[float, dict | None] = {}
    for far in fars:
        allowed = int(np.floor(far * len(negatives) + 1e-9))
        if len(negatives) == 0 or allowed < 1 or len(positives) == 0:
            out[far] = None
            continue
        threshold = float(np.nextafter(negatives[allowed], np.inf)) if allowed < len(negatives) else -1.0
        out[far] = {
            "tar": float((positives >= threshold).mean()),
            "far": float((negatives >= threshold).mean()),
            "threshold": threshold,
        }
    return out


@dataclass
class VerificationResult:
    """Summary of a verification run; ``to_dict`` gives the JSON form."""

    accuracy: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds_cosine: list[float]
    best_threshold_cosine: float
    best_threshold_accuracy: float
    tar_at_far: dict[str, dict | None]
    n_pairs: int
    n_same: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        extra = data.pop("extra")
        data.update(extra)
        return data


def evaluate_verification(
    scores: np.ndarray, issame: np.ndarray, n_folds: int = 10, fars=DEFAULT_FARS, *, kind: str = "similarity"
) -> VerificationResult:
    """k-fold accuracy, the best single threshold over all pairs, and TAR at each FAR."""
    dist = to_distance(scores, kind)
    same = np.asarray(issame, dtype=bool)
    accuracy, thresholds = kfold_accuracy(dist, same, n_folds, kind="distance")
    whole = np.array([((dist < t) == same).mean() for t in LFW_THRESHOLDS])
    best = int(np.argmax(whole))
    return VerificationResult(
        accuracy=float(accuracy.mean()),
        accuracy_std=float(accuracy.std()),
        fold_accuracies=[float(a) for a in accuracy],
        fold_thresholds_cosine=[round(1.0 - float(t) / 2.0, 4) for t in thresholds],
        best_threshold_cosine=round(1.0 - float(LFW_THRESHOLDS[best]) / 2.0, 4),
        best_threshold_accuracy=float(whole[best]),
        tar_at_far={
            f"{far:g}": value for far, value in tar_at_far(dist, same, fars, kind="distance").items()
        },
        n_pairs=int(len(same)),
        n_same=int(same.sum()),
    )

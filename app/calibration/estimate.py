"""Threshold calibration for open-set identification (numpy only; used by the API, the CLI and the bench).

Inputs are a probe × subject score matrix (best face per subject, as the server searches) for
non-mated probes (people not in the gallery), optionally mated probes, and the gallery size N.

- Identification threshold at a target FPIR for this gallery at its current size: the score that at most
  ``target`` of the non-mated probes reach with their best subject. Empirical (between two order
  statistics) when at least ``MIN_EXCEEDANCES`` probes lie above it; otherwise extrapolated with an
  exponential tail fitted to the highest non-mated scores.
- Growth: with an exponential upper tail of scale β for one probe-vs-subject impostor score, the best of
  N such scores shifts by β·ln(N'/N) when the gallery grows from N to N' subjects (extreme-value
  behaviour of the maximum, Gumbel). β is fitted on the pooled impostor scores near the operating point.
  The threshold for a gallery of N' subjects is ``t + β·ln(N'/N)``; recalibration is advised past
  ``growth_limit`` × N because β itself drifts slowly with the depth of the tail.
- 1:1 threshold at a target FAR from the same impostor comparisons (probe vs one subject).
- Uncertainty: a bootstrap 95% interval of each threshold over the non-mated probes, and a Wilson
  interval of the FPIR measured at the chosen threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_EXCEEDANCES = 10  # below this many scores above the quantile, extrapolate with the tail model
BOOTSTRAP_ROUNDS = 200
DEFAULT_TARGET_FPIR = 1e-2
DEFAULT_TARGET_FAR = 1e-3
DEFAULT_GROWTH_LIMIT = 2.0
MIN_NON_MATED = 20  # fewer non-mated probes than this: no estimate at all (refused)


def quantile_threshold(scores: np.ndarray, target: float) -> tuple[float, str]:
    """(threshold with P(score ≥ threshold) ≈ target, method: ``empirical`` or ``tail``)."""
    s = np.sort(np.asarray(scores, np.float64))[::-1]
    m = len(s)
    if m == 0:
        raise ValueError("no scores to calibrate on")
    expected = target * m
    if expected >= MIN_EXCEEDANCES:
        i = int(math.floor(expected + 1e-9))
        return float((s[i - 1] + s[i]) / 2) if i < m else float(s[-1]), "empirical"
    n_tail = min(m, max(MIN_EXCEEDANCES, m // 10))
    u = s[n_tail - 1]
    beta = max(float(np.mean(s[: n_tail - 1] - u)) if n_tail > 1 else 0.0, 1e-4)
    return float(min(u + beta * math.log((n_tail / m) / target), 1.0)), "tail"


def tail_scale(impostor: np.ndarray, level: float, min_tail: int = 50) -> float:
    """β of an exponential fitted to impostor scores above their (1 − level) quantile (≥ min_tail)."""
    s = np.sort(np.asarray(impostor, np.float64).ravel())[::-1]
    if len(s) < 3:
        return 0.0
    n = int(min(len(s), max(min_tail, math.ceil(level * len(s)))))
    n = min(n, max(3, len(s) // 20)) if len(s) > 60 else n
    u = s[n - 1]
    return float(max(np.mean(s[: n - 1] - u), 0.0))


def wilson(count: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = count / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def bootstrap_interval(scores: np.ndarray, target: float, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0):
    rng = np.random.default_rng(seed)
    values = [
        quantile_threshold(scores[rng.integers(0, len(scores), len(scores))], target)[0]
        for _ in range(rounds)
    ]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


@dataclass
class CalibrationInput:
    """Score matrices of one calibration run (rows: probes, columns: the gallery's subjects)."""

    non_mated: np.ndarray  # M × N: probes of people not in the gallery (or left out of it)
    gallery_subjects: int  # N: subjects the gallery had when the scores were taken
    mated_best: np.ndarray | None = None  # per mated probe: its best score over the gallery
    mated_correct: np.ndarray | None = None  # per mated probe: is that best subject the right one


def calibrate(
    data: CalibrationInput,
    target_fpir: float = DEFAULT_TARGET_FPIR,
    target_far: float = DEFAULT_TARGET_FAR,
    growth_limit: float = DEFAULT_GROWTH_LIMIT,
) -> dict:
    """The calibration record (JSON-ready): thresholds, growth model, sample sizes, intervals."""
    if not 0 < target_fpir < 1 or not 0 < target_far < 1:
        raise ValueError("targets must lie strictly between 0 and 1")
    nm = np.asarray(data.non_mated, np.float32)
    if nm.ndim != 2 or nm.shape[1] == 0:
        raise ValueError("calibration needs a gallery with at least one subject")
    if nm.shape[0] < MIN_NON_MATED:
        raise ValueError(
            f"{nm.shape[0]} non-mated probes; calibration needs at least {MIN_NON_MATED} (and "
            f"{math.ceil(MIN_EXCEEDANCES / target_fpir)} to measure FPIR {target_fpir:g} directly): "
            "enroll more subjects or add impostor images of people who are not in the gallery"
        )
    best = np.nanmax(nm, axis=1)  # NaN: a probe's own subject, hidden (leave one subject out)
    pooled = nm.ravel()
    pooled = pooled[~np.isnan(pooled)]
    n = data.gallery_subjects
    threshold, method = quantile_threshold(best, target_fpir)
    beta = tail_scale(pooled, level=10 * target_fpir / max(n, 1))
    accepted = int(np.sum(best >= threshold))
    far_threshold, far_method = quantile_threshold(pooled, target_far)
    record = {
        "target_fpir": target_fpir,
        "threshold": round(threshold, 4),
        "method": method,
        "gallery_subjects": n,
        "threshold_ci95": bootstrap_interval(best, target_fpir),
        "fpir_on_calibration": {
            "fpir": accepted / len(best),
            "accepted": accepted,
            "ci95": [round(v, 5) for v in wilson(accepted, len(best))],
        },
        "samples": {
            "non_mated_probes": int(nm.shape[0]),
            "impostor_comparisons": int(pooled.size),
            "mated_probes": int(len(data.mated_best)) if data.mated_best is not None else 0,
            "enough_for_target": bool(nm.shape[0] * target_fpir >= MIN_EXCEEDANCES),
            "needed_for_target": int(math.ceil(MIN_EXCEEDANCES / target_fpir)),
        },
        "growth": {
            "model": "gumbel: threshold(N') = threshold + slope * ln(N'/N)",
            "slope": round(beta, 5),
            "reference_subjects": n,
            "recalibrate_above_subjects": int(math.ceil(n * growth_limit)),
        },
        "verify": {
            "target_far": target_far,
            "threshold": round(far_threshold, 4),
            "method": far_method,
            "impostor_comparisons": int(pooled.size),
            "threshold_ci95": bootstrap_interval(pooled, target_far, rounds=50),
        },
    }
    if data.mated_best is not None and len(data.mated_best):
        correct = np.asarray(data.mated_correct, bool)
        found = correct & (np.asarray(data.mated_best) >= threshold)
        record["fnir_on_calibration"] = {
            "fnir": float(1 - found.mean()),
            "ci95": [round(v, 5) for v in wilson(int((~found).sum()), len(found))],
        }
    return record


def threshold_for_size(record: dict, subjects: int) -> float:
    """The calibrated threshold moved to a gallery of ``subjects`` subjects by the growth model."""
    growth = record.get("growth") or {}
    reference = max(int(growth.get("reference_subjects") or record.get("gallery_subjects") or 1), 1)
    slope = float(growth.get("slope") or 0.0)
    return float(record["threshold"]) + slope * math.log(max(subjects, 1) / reference)

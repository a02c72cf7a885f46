"""The calibration estimator on score distributions with a known truth (fresh held-out draws).

Impostor scores are drawn like real cosine impostor scores (roughly normal, mean 0.05, sd 0.1); each
probe also gets its own offset (some strangers resemble everyone a little), the correlation that makes
the per-probe maximum harder to predict than independent draws would be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.calibration.estimate import (
    CalibrationInput,
    calibrate,
    quantile_threshold,
    threshold_for_size,
    wilson,
)


def impostors(rng: np.random.Generator, probes: int, subjects: int) -> np.ndarray:
    offset = rng.normal(0, 0.03, (probes, 1))
    return (0.05 + offset + rng.normal(0, 0.1, (probes, subjects))).astype(np.float32)


def fpir(threshold: float, scores: np.ndarray) -> float:
    return float(np.mean(scores.max(axis=1) >= threshold))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibrated_threshold_meets_target_fpir_on_held_out_probes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    record = calibrate(CalibrationInput(impostors(rng, 3000, n), n), target_fpir=1e-2)
    held_out = impostors(rng, 20000, n)
    measured = fpir(record["threshold"], held_out)
    assert record["method"] == "empirical"
    assert 0.5e-2 <= measured <= 2e-2, measured
    lo, hi = record["threshold_ci95"]
    assert lo < record["threshold"] < hi
    assert record["fpir_on_calibration"]["fpir"] <= 1e-2


def test_tail_extrapolation_when_probes_are_too_few_for_the_target() -> None:
    rng = np.random.default_rng(5)
    n = 100
    record = calibrate(CalibrationInput(impostors(rng, 400, n), n), target_fpir=1e-3)
    assert record["method"] == "tail" and not record["samples"]["enough_for_target"]
    measured = fpir(record["threshold"], impostors(rng, 40000, n))
    assert 1e-3 / 3 <= measured <= 3e-3, measured  # extrapolating 4 expected exceedances is rougher


def test_growth_model_keeps_fpir_when_the_gallery_grows_fourfold() -> None:
    rng = np.random.default_rng(7)
    record = calibrate(CalibrationInput(impostors(rng, 4000, 100), 100), target_fpir=1e-2, growth_limit=2)
    held_out = impostors(rng, 20000, 400)
    unadjusted = fpir(record["threshold"], held_out)
    adjusted_t = threshold_for_size(record, 400)
    adjusted = fpir(adjusted_t, held_out)
    assert unadjusted > 2.5e-2  # the same threshold lets ~4× more strangers through
    assert 0.5e-2 <= adjusted <= 2e-2, adjusted
    assert adjusted_t > record["threshold"]
    assert record["growth"]["recalibrate_above_subjects"] == 200
    assert threshold_for_size(record, 100) == pytest.approx(record["threshold"])


def test_verify_threshold_meets_target_far_on_pairs() -> None:
    rng = np.random.default_rng(3)
    record = calibrate(CalibrationInput(impostors(rng, 1000, 50), 50), target_far=1e-3)
    pairs = impostors(rng, 4000, 50).ravel()
    far = float(np.mean(pairs >= record["verify"]["threshold"]))
    assert 0.5e-3 <= far <= 2e-3, far


def test_mated_probes_give_fnir_at_the_threshold() -> None:
    rng = np.random.default_rng(4)
    mated = rng.normal(0.6, 0.15, 500).astype(np.float32)
    record = calibrate(
        CalibrationInput(impostors(rng, 2000, 50), 50, mated_best=mated, mated_correct=np.ones(500, bool))
    )
    expected = float(np.mean(mated < record["threshold"]))
    assert record["fnir_on_calibration"]["fnir"] == pytest.approx(expected)


def test_too_few_probes_are_refused_and_targets_checked() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 20"):
        calibrate(CalibrationInput(impostors(rng, 10, 5), 5))
    with pytest.raises(ValueError, match="targets"):
        calibrate(CalibrationInput(impostors(rng, 100, 5), 5), target_fpir=0)


def test_quantile_threshold_matches_the_normal_quantile_and_wilson_covers() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, 200_000)
    t, method = quantile_threshold(scores, 1e-2)
    assert method == "empirical" and t == pytest.approx(2.326, abs=0.03)
    lo, hi = wilson(10, 1000)
    assert lo < 0.01 < hi and hi - lo < 0.02
    assert math.isclose(sum(wilson(0, 50)), wilson(0, 50)[1])


def test_leave_one_subject_out_hides_the_probe_and_its_subject() -> None:
    from app.calibration.sources import build_input, leave_one_subject_out

    # subject 7: faces 0, 1; subject 3: face 2; subject 5: face 3 (unit vectors in 3-D)
    emb = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0.6, 0, 0.8]], np.float32)
    labels = np.array([7, 7, 3, 5])
    non_mated, mated_best, mated_correct = leave_one_subject_out(emb, labels)
    # columns are subjects 3, 5, 7; a probe's own subject is hidden (NaN)
    assert np.isnan(non_mated[0, 2]) and np.isnan(non_mated[2, 0]) and np.isnan(non_mated[3, 1])
    assert non_mated[0, :2] == pytest.approx([0.0, 0.6])
    assert non_mated[3, [0, 2]] == pytest.approx([0.0, 0.6])  # face 3 vs subject 7: best of faces 0, 1
    # only subject 7 has a second face: faces 0 and 1 are mated probes against each other (0.8)
    assert mated_best == pytest.approx([0.8, 0.8]) and mated_correct.all()
    data, counts = build_input(emb, labels, impostors=emb[:1] * -1)
    assert counts["gallery_non_mated"] == 4 and counts["impostors"] == 1 and data.gallery_subjects == 3

"""Open-set metrics on a hand-computed case, and the DET curve/plot."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation.openset import det_plot, evaluate_open_set, subject_scores, threshold_at_fpir


def test_subject_scores_take_each_subjects_best_face() -> None:
    gallery = np.eye(3, dtype=np.float32)
    scores, subjects = subject_scores(gallery, np.array(["b", "a", "b"]), np.eye(3, dtype=np.float32)[[2, 1]])
    assert subjects.tolist() == ["a", "b"]
    assert scores.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_hand_computed_fnir_fpir_dir_rank() -> None:
    subjects = np.array([0, 1, 2])
    scores = np.array(
        [
            [0.9, 0.1, 0.0],  # mated 0, found at rank 1
            [0.3, 0.2, 0.7],  # mated 1, rank 3 (0.7, 0.3 above it)
            [0.1, 0.5, 0.2],  # mated 1, found at 0.5
            [0.6, 0.1, 0.1],  # non-mated, best 0.6
            [0.2, 0.3, 0.1],  # non-mated, best 0.3
            [0.1, 0.1, 0.45],  # non-mated, best 0.45
            [0.0, 0.0, 0.1],
            [0.05, 0.0, 0.0],
            [0.0, 0.2, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.01],
            [0.0, 0.0, 0.02],
            [0.0, 0.0, 0.03],
        ]
    )
    labels = np.array([0, 1, 1] + [9] * 10)
    r = evaluate_open_set(scores, subjects, labels, fpirs=(0.1, 0.01), ranks=(1, 3), threshold=0.4)
    assert r.mated_probes == 3 and r.non_mated_probes == 10
    assert r.rank_accuracy == {1: pytest.approx(2 / 3), 3: 1.0}
    at = r.at_fpir[0.1]  # one non-mated (0.6) may pass: threshold just above 0.45
    assert 0.45 < at["threshold"] < 0.46
    assert at["fpir"] == pytest.approx(0.1)
    assert at["fnir"] == pytest.approx(1 / 3) and at["dir"] == pytest.approx(2 / 3)
    assert r.at_fpir[0.01] is None  # 10 non-mated probes cannot resolve 1e-2
    assert r.at_threshold["fpir"] == pytest.approx(0.2) and r.at_threshold["fnir"] == pytest.approx(1 / 3)
    assert threshold_at_fpir(np.array([0.6, 0.3, 0.45]), 0.5) == pytest.approx(0.45, abs=1e-6)


def test_det_curve_is_monotone_and_plots(tmp_path) -> None:
    rng = np.random.default_rng(0)
    subjects = np.arange(20)
    scores = rng.normal(0, 0.1, (300, 20))
    labels = np.concatenate([rng.integers(0, 20, 100), np.full(200, 99)])
    scores[np.arange(100), labels[:100]] += 0.6
    r = evaluate_open_set(scores, subjects, labels)
    fpir, fnir = np.array(r.det["fpir"]), np.array(r.det["fnir"])
    assert np.all(np.diff(fpir) >= 0) and np.all(np.diff(fnir) <= 1e-12)  # thresholds descend
    path = det_plot({"x": r.det}, tmp_path / "det.png", {"t": [(0.01, 0.2, "t")]})
    assert path.stat().st_size > 5000
    assert set(r.to_dict(with_curve=True)) >= {"fnir_at_fpir", "rank_accuracy", "det"}

"""The verification protocol: hand-computed k-fold accuracy, the insightface loop, TAR@FAR, pairs."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import MarginFaceError
from models.evaluation import evaluate_verification, kfold_accuracy, read_pairs, roc, tar_at_far


def test_kfold_hand_computed():
    # Fold 0 = pairs 0-1, fold 1 = pairs 2-3; same ⇔ distance < threshold.
    distances = np.array([0.155, 1.605, 0.805, 0.605])
    issame = np.array([True, False, True, False])
    accuracy, thresholds = kfold_accuracy(distances, issame, n_folds=2, kind="distance")
    # Fold 0 is tested with the threshold chosen on fold 1, where 0.0 is the first of the best (0.5);
    # fold 1 with the one chosen on fold 0: 0.16, the first above 0.155.
    assert thresholds.tolist() == pytest.approx([0.0, 0.16])
    assert accuracy.tolist() == [0.5, 0.5]
    sims = 1 - distances / 2
    assert np.allclose(kfold_accuracy(sims, issame, 2)[0], accuracy)


def insightface_reference(dist: np.ndarray, issame: np.ndarray, n_folds: int) -> np.ndarray:
    """insightface ``verification.calculate_roc``'s accuracy loop (sklearn KFold without shuffle)."""
    from sklearn.model_selection import KFold

    thresholds = np.arange(0, 4, 0.01)
    accuracy = np.zeros(n_folds)
    for fold, (train, test) in enumerate(KFold(n_splits=n_folds, shuffle=False).split(np.arange(len(dist)))):
        train_acc = [np.mean(np.less(dist[train], t) == issame[train]) for t in thresholds]
        best = thresholds[int(np.argmax(train_acc))]
        accuracy[fold] = np.mean(np.less(dist[test], best) == issame[test])
    return accuracy


@pytest.mark.parametrize("n_pairs", [600, 613])
def test_kfold_matches_insightface_loop(n_pairs):
    rng = np.random.default_rng(n_pairs)
    issame = rng.random(n_pairs) < 0.5
    sims = np.clip(np.where(issame, 0.55, 0.1) + rng.normal(0, 0.2, n_pairs), -1, 1)
    ours, _ = kfold_accuracy(sims, issame)
    assert np.allclose(ours, insightface_reference(2 - 2 * sims, issame, 10))


def test_tar_at_far_hand_computed():
    negatives = [0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3]
    positives = [0.95, 0.6, 0.45, 0.35]
    sims = np.array(negatives + positives)
    issame = np.array([False] * 10 + [True] * 4)
    result = tar_at_far(sims, issame, fars=(0.2, 0.1, 0.01))
    assert result[0.1]["tar"] == 0.5 and result[0.1]["far"] == 0.1
    assert 0.5 < result[0.1]["threshold"] < 0.5 + 1e-9
    assert result[0.2]["tar"] == 0.75 and result[0.2]["far"] == 0.2
    assert result[0.01] is None  # 10 negatives cannot measure FAR 1e-2


def test_roc_is_monotone_and_complete():
    rng = np.random.default_rng(1)
    issame = rng.random(200) < 0.5
    sims = np.round(np.where(issame, 0.6, 0.2) + rng.normal(0, 0.2, 200), 2)
    far, tar, thresholds = roc(sims, issame)
    assert (np.diff(far) >= 0).all() and (np.diff(tar) >= 0).all() and (np.diff(thresholds) < 0).all()
    assert far[-1] == 1.0 and tar[-1] == 1.0
    k = len(thresholds) // 2
    assert tar[k] == np.mean(sims[issame] >= thresholds[k]) and far[k] == np.mean(
        sims[~issame] >= thresholds[k]
    )


def test_result_summary():
    sims = np.array([0.9, 0.1, 0.8, 0.2] * 5)
    issame = np.array([True, False] * 10)
    result = evaluate_verification(sims, issame, n_folds=10).to_dict()
    assert result["accuracy"] == 1.0 and result["accuracy_std"] == 0.0 and result["n_pairs"] == 20
    assert 0.2 <= result["best_threshold_cosine"] <= 0.8 and result["best_threshold_accuracy"] == 1.0


def test_read_pairs(tmp_path):
    text = "2 1\nAnn 1 2\nAnn 1 Bob 12\nBob 3 4\nCid 7 Ann 2\n"
    (tmp_path / "pairs.txt").write_text(text)
    pairs = read_pairs(tmp_path / "pairs.txt", tmp_path / "img")
    assert [(p[2], p[3]) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1][1] == tmp_path / "img" / "Bob" / "Bob_0012.jpg"
    assert pairs[3][0] == tmp_path / "img" / "Cid" / "Cid_0007.jpg"
    for bad in ("", "10 300\nAnn 1 2\n", "1 1\nAnn 1 x\nAnn 1 Bob 2\n", "1 1\nAnn 1\nAnn 1 Bob 2\n"):
        (tmp_path / "bad.txt").write_text(bad)
        with pytest.raises(MarginFaceError) as info:
            read_pairs(tmp_path / "bad.txt")
        assert info.value.code == "bad_pairs_file"

"""Evaluation of checkpoints: identification metrics on a hand-computed case, the .bin verification
command with JSON and plots, checkpoint embeddings inside the pack pipeline, and 1:N over folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli.main import main as cli_main
from models.evaluation.identification import evaluate_identification
from models.evaluation.metrics import evaluate_verification


def _unit(*angles_deg: float) -> np.ndarray:
    a = np.radians(angles_deg)
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def test_identification_hand_computed() -> None:
    # gallery: identity 0 at 0°, identity 1 at 90°, identity 2 at 180°; a distractor at 40°
    gallery, labels = _unit(0, 90, 180), np.array([0, 1, 2])
    # enrolled probes: id0 at 10° (nearest id0), id1 at 60° (nearest: distractor 40°, then id1 at 90°),
    # id2 at 150° (nearest id2); non-enrolled probes (identity 7) at 45° (cos 0.9962 to the distractor) and
    # 225° (cos 0.7071 to id2)
    probes, probe_labels = _unit(10, 60, 150, 45, 225), np.array([0, 1, 2, 7, 7])
    res = evaluate_identification(
        gallery, labels, probes, probe_labels, distractors=_unit(40), ranks=(1, 2), fpirs=(0.5, 0.1)
    )
    assert res.rank_accuracy == {1: pytest.approx(2 / 3), 2: pytest.approx(1.0)}
    assert (res.enrolled_probes, res.non_enrolled_probes, res.gallery_size, res.distractors) == (3, 2, 3, 1)
    # FPIR 0.5 over 2 non-mated probes: 1 may pass, threshold = the 2nd-highest best score (cos 45°);
    # accepted: 10° (cos 10° to id0) and 150° (cos 30° to id2); 60° is rejected (its best is the distractor)
    assert res.tpir_at_fpir[0.5]["threshold"] == pytest.approx(np.cos(np.radians(45)), abs=1e-6)
    assert res.tpir_at_fpir[0.5]["tpir"] == pytest.approx(2 / 3)
    assert res.tpir_at_fpir[0.5]["fpir_measured"] == 0.5
    assert 0.1 not in res.tpir_at_fpir  # 2 non-mated probes cannot resolve FPIR 0.1
    # without the distractor the 60° probe is correct at rank 1
    res = evaluate_identification(gallery, labels, probes[:3], probe_labels[:3], ranks=(1,), fpirs=(0.5,))
    assert res.rank_accuracy[1] == 1.0 and res.tpir_at_fpir == {}  # no non-mated probe, no open-set figure


def test_eval_bin_with_checkpoint_json_and_plots(
    trained_checkpoint: Path, lfw_like_bin: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, plots = tmp_path / "r.json", tmp_path / "plots"
    assert (
        cli_main(
            [
                "eval",
                "bin",
                "--bin",
                str(lfw_like_bin),
                "--checkpoint",
                str(trained_checkpoint),
                "--trust-code",  # the tiny test backbone is tests.training.tiny:tiny_net
                "--flip",
                "--json",
                str(out),
                "--plots",
                str(plots),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["n_pairs"] == 20 and report["n_same"] == 10 and report["flip"] is True
    assert len(report["fold_accuracies"]) == 10 and 0.0 <= report["accuracy"] <= 1.0
    # the same numbers from the embeddings computed here and the numpy protocol
    from training.evaluation.embed import embed_crops, load_backbone
    from training.evaluation.verification import load_bin, pair_cosines

    images, issame = load_bin(lfw_like_bin)
    backbone, _ = load_backbone(trained_checkpoint, trust_code=True)
    expected = evaluate_verification(pair_cosines(embed_crops(backbone, images, flip=True)), issame)
    assert report["accuracy"] == pytest.approx(expected.accuracy)
    assert report["tar_at_far"]["0.1"]["threshold"] == pytest.approx(expected.tar_at_far["0.1"]["threshold"])
    assert report["tar_at_far"]["0.01"] is None  # 10 negative pairs cannot resolve FAR 1e-2
    for png in report["plots"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = np.load(report["pair_scores"])  # the raw pair cosines, for re-plotting and comparing runs
    assert scores["issame"].tolist() == [bool(s) for s in issame]
    rescored = evaluate_verification(scores["cosine"], scores["issame"])
    assert rescored.accuracy == pytest.approx(report["accuracy"])
    assert (
        cli_main(
            ["eval", "bin", "--bin", str(tmp_path / "none.bin"), "--checkpoint", str(trained_checkpoint),
             "--trust-code"]
        )
        == 1
    )
    assert "eval_set_not_found" in capsys.readouterr().err


def test_flip_embedding_is_the_normalised_sum(trained_checkpoint: Path, lfw_like_bin: Path) -> None:
    from training.evaluation.embed import embed_crops, load_backbone
    from training.evaluation.verification import load_bin

    images = np.stack(load_bin(lfw_like_bin)[0][:4])
    backbone, _ = load_backbone(trained_checkpoint, trust_code=True)
    plain = embed_crops(backbone, images, flip=False)
    assert np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-5)
    import torch

    from training.evaluation.embed import crops_to_tensor

    with torch.no_grad():
        x = crops_to_tensor(images)
        raw = backbone(x) + backbone(x.flip(-1))
    expected = (raw / raw.norm(dim=1, keepdim=True)).numpy()
    assert np.allclose(embed_crops(backbone, images, flip=True), expected, atol=1e-5)


def test_eval_ident_over_aligned_folders(trained_checkpoint: Path, face_folder: Path, tmp_path: Path) -> None:
    gallery, probes = tmp_path / "gallery", tmp_path / "probes"
    for k, person in enumerate(sorted(face_folder.iterdir())):
        files = sorted(person.glob("*.jpg"))
        if k < 4:  # 4 enrolled identities: 2 gallery images each, the rest are probes
            (gallery / person.name).mkdir(parents=True)
            for f in files[:2]:
                shutil.copy(f, gallery / person.name / f.name)
        (probes / person.name).mkdir(parents=True)
        for f in files[2:]:
            shutil.copy(f, probes / person.name / f.name)
    out = tmp_path / "ident.json"
    assert (
        cli_main(
            [
                "eval",
                "ident",
                "--gallery",
                str(gallery),
                "--probes",
                str(probes),
                "--aligned",
                "--checkpoint",
                str(trained_checkpoint),
                "--trust-code",  # the tiny test backbone is tests.training.tiny:tiny_net
                "--ranks",
                "1,3",
                "--fpir",
                "0.1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert (report["enrolled_probes"], report["non_enrolled_probes"], report["gallery_size"]) == (24, 12, 8)
    assert 0.0 <= report["rank_accuracy"]["rank1"] <= report["rank_accuracy"]["rank3"] <= 1.0
    assert set(report["tpir_at_fpir"]) == {"0.1"}


def test_each_distinct_crop_is_embedded_once() -> None:
    from training.evaluation.verification import embed_bin_images

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(2))
    seen: list[int] = []

    def embed(crops: list[np.ndarray]) -> np.ndarray:
        seen.append(len(crops))
        return np.array([[float(c.mean())] for c in crops])

    out = embed_bin_images(embed, [a, b, a.copy(), b, a])
    assert seen == [2]
    assert out[:, 0].tolist() == [a.mean(), b.mean(), a.mean(), b.mean(), a.mean()]


def test_eval_pairs_with_checkpoint_uses_the_checkpoint_backbone(
    trained_checkpoint: Path, default_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Raw (unaligned) images: the pack detects and aligns, the checkpoint embeds."""
    import cv2

    from tests.training.conftest import T1_LANDMARKS, t1_image

    img = t1_image()
    images = tmp_path / "images"
    for k, landmarks in enumerate(T1_LANDMARKS[:4]):
        cx, cy = np.mean(np.array(landmarks), axis=0).astype(int)
        folder = images / f"P{k}"
        folder.mkdir(parents=True)
        for i, shift in enumerate((0, 6)):  # two views of each face: 160×160 windows, shifted
            x0, y0 = max(cx - 80 + shift, 0), max(cy - 80 - shift, 0)
            cv2.imwrite(str(folder / f"P{k}_{i + 1:04d}.jpg"), img[y0 : y0 + 160, x0 : x0 + 160])
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2 2\nP0 1 2\nP1 1 2\nP0 1 P1 2\nP1 1 P0 1\nP2 1 2\nP3 1 2\nP2 1 P3 2\nP3 1 P2 1\n")
    out = tmp_path / "pairs.json"
    assert (
        cli_main(
            [
                "eval",
                "pairs",
                "--images",
                str(images),
                "--pairs",
                str(pairs),
                "--pack",
                str(default_pack),
                "--checkpoint",
                str(trained_checkpoint),
                "--trust-code",  # the tiny test backbone is tests.training.tiny:tiny_net
                "--json",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["n_pairs"] == 8 and "checkpoint:checkpoint_last.pt" in report["pack"]
    assert report["providers"]["recogniser"] == ["torch:cpu"]
    assert report["images_detected"] == 8
    capsys.readouterr()


class _AngleFromIntensity:
    """A deterministic 'backbone': a uniform crop of grey level v embeds at angle v degrees on the unit
    circle (flip-invariant), so pair distances are known exactly."""

    training = False

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, x):
        import torch

        grey = torch.round(x.mean(dim=(1, 2, 3)) * 127.5 + 127.5)
        angle = torch.deg2rad(grey)
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def test_bin_protocol_hand_computed(tmp_path: Path) -> None:
    """20 pairs in 10 folds of (same, different). Same pairs are 10° apart (distance 2 − 2·cos 10° = 0.0304),
    different pairs 90° (distance 2). Fold 0 has a hard same pair (100°, distance 2.35) and fold 1 a hard
    different pair (5°, distance 0.0076). Every fold's training folds pick threshold 0.04 (first of
    arange(0, 4, 0.01) above 0.0304), so folds 0 and 1 score 1/2 and the others 2/2: mean 0.9, std 0.2."""
    import pickle

    import cv2

    from training.evaluation.verification import evaluate_bin

    def crop(grey: int) -> bytes:
        return cv2.imencode(".png", np.full((112, 112, 3), grey, np.uint8))[1].tobytes()

    images, issame = [], []
    for fold in range(10):
        base = 20 + 3 * fold
        same_gap = 100 if fold == 0 else 10
        diff_gap = 5 if fold == 1 else 90
        images += [crop(base), crop(base + same_gap), crop(base + 1), crop(base + 1 + diff_gap)]
        issame += [True, False]
    path = tmp_path / "hand.bin"
    path.write_bytes(pickle.dumps((images, issame)))
    report = evaluate_bin(_AngleFromIntensity(), path, flip=True, plots_dir=tmp_path / "plots")
    assert report["fold_accuracies"] == pytest.approx([0.5, 0.5] + [1.0] * 8)
    assert report["accuracy"] == pytest.approx(0.9) and report["accuracy_std"] == pytest.approx(0.2)
    assert report["fold_thresholds_cosine"] == pytest.approx([1 - 0.04 / 2] * 10)
    # FAR 0.1 over 10 negatives allows 1 false accept (the 5° pair): every same pair but the 100° one passes
    assert report["tar_at_far"]["0.1"]["tar"] == pytest.approx(0.9)
    assert report["tar_at_far"]["0.01"] is None
    # AUC by hand = fraction of (positive, negative) pairs ranked correctly: the 9 positives at cos 10° lose
    # only to the 5° negative (9 losses); the 100° positive (cos −0.17) loses to all 10 negatives: 1 − 19/100
    assert report["roc_auc"] == pytest.approx(0.81)
    assert len(report["plots"]) == 2


@pytest.mark.slow
def test_onnx_engine_gives_the_torch_embeddings(
    trained_checkpoint: Path, lfw_like_bin: Path, tmp_path: Path
) -> None:
    """--engine onnx (export + ONNX Runtime) scores the set as PyTorch does (slow: the export)."""
    reports = {}
    for engine in ("torch", "onnx"):
        out = tmp_path / f"{engine}.json"
        assert (
            cli_main(
                [
                    "eval",
                    "bin",
                    "--bin",
                    str(lfw_like_bin),
                    "--checkpoint",
                    str(trained_checkpoint),
                    "--trust-code",
                    "--engine",
                    engine,
                    "--json",
                    str(out),
                ]
            )
            == 0
        )
        reports[engine] = json.loads(out.read_text())
    assert reports["onnx"]["engine"] == "onnx"
    assert reports["onnx"]["accuracy"] == pytest.approx(reports["torch"]["accuracy"])
    assert reports["onnx"]["best_threshold_cosine"] == pytest.approx(
        reports["torch"]["best_threshold_cosine"], abs=0.011
    )

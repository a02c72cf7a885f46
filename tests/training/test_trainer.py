"""The training loop on real aligned face crops: checkpoints, metrics, best-by-eval, exact resume, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from cli.main import main as cli_main
from tests.training.conftest import tiny_config
from training.build import autocast_dtype
from training.config import ConfigError, validate_config
from training.trainer import Trainer

CHECKPOINT_KEYS = {
    "backbone",
    "config",
    "loss",
    "optimizer",
    "scheduler",
    "step",
    "epoch",
    "rng",
    "eval",
    "best_metric",
}


def test_smoke_training_writes_checkpoints_metrics_and_best(
    face_folder: Path, lfw_like_bin: Path, tmp_path: Path
) -> None:
    cfg = validate_config(
        tiny_config(
            face_folder, eval={"sets": [{"name": "tiny", "bin": str(lfw_like_bin)}], "every_steps": 3}
        )
    )
    summary = Trainer(cfg, tmp_path, progress=False).fit()
    assert summary["step"] == 6 and not summary["stopped_early"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "checkpoint_best.pt",
        "checkpoint_last.pt",
        "metrics.csv",
        "step_000004.pt",
        "step_000006.pt",
    ]
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=False)
    assert CHECKPOINT_KEYS <= set(state)
    assert state["step"] == 6 and state["epoch"] == 1  # 48 images / batch 8 = 6 steps per epoch
    assert state["config"]["backbone"] == "tests.training.tiny:tiny_net"
    assert state["config"]["embedding_size"] == 16 and state["config"]["loss"]["name"] == "arcface"
    assert state["loss"]["weight"].shape == (6, 16)
    assert 0.0 <= state["eval"]["tiny"]["accuracy"] <= 1.0
    assert state["best_metric"] == max(state["best_metric"], state["eval"]["tiny"]["accuracy"])
    best = torch.load(tmp_path / "checkpoint_best.pt", weights_only=False)
    assert best["step"] in (3, 6) and best["best_metric"] == state["best_metric"]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    losses = [r for r in rows if r["loss"]]
    assert [int(r["step"]) for r in losses] == [2, 4, 6]
    assert all(float(r["images_per_s"]) > 0 for r in losses)
    assert [int(r["step"]) for r in rows if r.get("tiny/accuracy")] == [3, 6]


def test_loss_goes_down(face_folder: Path, tmp_path: Path) -> None:
    cfg = validate_config(
        tiny_config(
            face_folder,
            loss={"name": "cosface", "s": 16, "m": 0.2},
            steps=36,
            log_every=6,
            optimizer={"lr": 0.1},
            schedule={"name": "constant"},
        )
    )
    Trainer(cfg, tmp_path, progress=False).fit()
    losses = [float(r["loss"]) for r in csv.DictReader((tmp_path / "metrics.csv").open())]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_ends_equal_to_an_uninterrupted_run(face_folder: Path, tmp_path: Path, workers: int) -> None:
    # curricularface keeps a running buffer (t) and dropout consumes the torch RNG: both must be restored
    raw = tiny_config(
        face_folder,
        loss={"name": "curricularface", "s": 16, "m": 0.3},
        dropout=0.2,
        steps=10,
        checkpoint={"every_steps": 4, "keep_last": 5},
        data={"root": str(face_folder), "workers": workers},
    )
    cfg = validate_config(raw)
    Trainer(cfg, tmp_path / "full", progress=False).fit()
    Trainer(cfg, tmp_path / "cut", progress=False).fit(stop_after=4)
    Trainer(cfg, tmp_path / "cut", resume=tmp_path / "cut" / "step_000004.pt", progress=False).fit()
    full = torch.load(tmp_path / "full" / "checkpoint_last.pt", weights_only=False)
    resumed = torch.load(tmp_path / "cut" / "checkpoint_last.pt", weights_only=False)
    assert resumed["step"] == full["step"] == 10
    for part in ("backbone", "loss"):
        for key, value in full[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key}"
    assert full["loss"]["t"].abs().item() > 0  # the buffer moved
    momentum = [s["momentum_buffer"] for s in full["optimizer"]["state"].values()]
    momentum_resumed = [s["momentum_buffer"] for s in resumed["optimizer"]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, momentum_resumed, strict=True))
    assert full["scheduler"]["last_epoch"] == resumed["scheduler"]["last_epoch"] == 10


def test_cli_train_resume_and_errors(
    face_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(face_folder)))
    out = tmp_path / "run"
    assert cli_main(["train", str(config), "--out", str(out), "--set", "steps=3", "--no-progress"]) == 0
    assert torch.load(out / "checkpoint_last.pt", weights_only=False)["step"] == 3
    assert (
        cli_main(["train", str(config), "--out", str(out), "--resume", "--set", "steps=5", "--no-progress"])
        == 0
    )
    assert torch.load(out / "checkpoint_last.pt", weights_only=False)["step"] == 5
    capsys.readouterr()
    assert cli_main(["train", str(config), "--out", str(tmp_path / "empty"), "--resume"]) == 1
    assert "checkpoint_not_found" in capsys.readouterr().err
    assert cli_main(["train", str(config), "--set", "loss.name=nosuchloss", "--out", str(out)]) == 1
    assert "nosuchloss" in capsys.readouterr().err
    assert (
        cli_main(["train", str(config), "--out", str(out), "--set", "data.root=" + str(tmp_path / "missing")])
        == 1
    )
    assert "missing" in capsys.readouterr().err


def test_fp16_needs_cuda_and_bf16_runs_on_cpu(face_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        autocast_dtype("fp16", torch.device("cpu"))
    assert info.value.code == "bad_precision"
    cfg = validate_config(tiny_config(face_folder, precision="bf16", steps=2))
    summary = Trainer(cfg, tmp_path, progress=False).fit()
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=False)
    assert summary["step"] == 2 and all(torch.isfinite(v).all() for v in state["backbone"].values())

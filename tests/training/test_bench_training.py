"""The training benchmark's run collector: a finished run folder + its `eval bin --json` → the runs table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main as cli_main


def test_collect_summarises_a_finished_run(
    trained_checkpoint: Path, lfw_like_bin: Path, tmp_path: Path
) -> None:
    from bench.bench_training import collect, runs_table

    run = tmp_path / "run"
    shutil.copytree(trained_checkpoint.parent, run)
    plots = run / "lfw_plots"
    args = ["eval", "bin", "--bin", str(lfw_like_bin), "--checkpoint", str(run / "checkpoint_last.pt")]
    args.append("--trust-code")  # the tiny test backbone is tests.training.tiny:tiny_net
    assert cli_main([*args, "--flip", "--json", str(run / "lfw.json"), "--plots", str(plots)]) == 0
    report = json.loads((run / "lfw.json").read_text())

    out = collect([run], out=tmp_path / "runs.json", img_dir=tmp_path / "img")
    saved = json.loads(out.read_text())
    (summary,) = saved["runs"]
    assert summary["steps"] == 12 and summary["images"] == 12 * 8  # tiny_config: batch 8, 12 steps
    assert summary["epochs"] == pytest.approx(96 / 48)  # face_folder: 6 identities × 8 crops
    assert summary["loss_config"] == {"name": "arcface", "s": 16, "m": 0.3}
    assert summary["config"] == "configs/tiny.yaml"
    assert summary["lfw_accuracy"] == report["accuracy"] and summary["lfw_std"] == report["accuracy_std"]
    assert summary["tar_at_far"]["0.1"] == report["tar_at_far"]["0.1"]["tar"]
    assert summary["train_images_per_s"] > 0
    for rel in saved["plots"]:  # ROC, similarity histograms, loss curves
        assert (out.parent / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(saved["plots"]) == 3

    table = runs_table(out)
    (row,) = table["rows"]
    assert row[0] == "arcface s=16 m=0.3" and f"{100 * report['accuracy']:.2f}" in row[6]
    assert "skipped" in runs_table(tmp_path / "absent.json")

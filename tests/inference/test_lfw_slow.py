"""LFW (deep-funneled, official 6,000 pairs) end to end through ``marginface eval pairs`` (minutes)."""

from __future__ import annotations

import json

import pytest

from cli.main import main


@pytest.mark.slow
def test_lfw_pairs_with_default_pack(shared_dir, default_pack, capsys):
    lfw = shared_dir / "data" / "lfw"
    if not (lfw / "pairs.txt").is_file():
        pytest.skip(f"{lfw} has no pairs.txt")
    argv = ["eval", "pairs", "--images", str(lfw / "images_deepfunneled"), "--pairs", str(lfw / "pairs.txt")]
    assert main([*argv, "--pack", str(default_pack), "--workers", "2", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_pairs"] == 6000 and len(result["fold_accuracies"]) == 10
    assert result["pairs_scored_as_nonmatch_for_failure"] == 0  # every pair scored
    assert result["accuracy"] >= 0.991  # SFace publishes 99.60% (fp32); within 0.5 points
    assert result["tar_at_far"]["0.001"] is not None and result["tar_at_far"]["0.0001"] is None

"""The decision-margin derivation behind the pictures, and the ``marginface losses`` commands."""

from __future__ import annotations

import math

import pytest
import torch

from cli.main import main
from training.losses import build_loss
from training.losses.curves import decision_margin

PHI = torch.linspace(math.radians(60), math.pi, 50, dtype=torch.float64)


def test_arcface_and_airface_margins_are_fixed() -> None:
    torch.testing.assert_close(
        decision_margin(build_loss("arcface", 2, 3, m=0.5), PHI), torch.full_like(PHI, 0.5)
    )
    airface = decision_margin(build_loss("airface", 2, 3, m=0.45), PHI)
    torch.testing.assert_close(airface, torch.full_like(PHI, 0.45))


def test_normface_has_no_margin_and_arcface_is_infeasible_below_m() -> None:
    torch.testing.assert_close(
        decision_margin(build_loss("normface", 2, 3), PHI), torch.zeros_like(PHI), atol=1e-9, rtol=0
    )
    small = torch.tensor([0.3, 0.6], dtype=torch.float64)
    got = decision_margin(build_loss("arcface", 2, 3, m=0.5), small)
    assert math.isnan(float(got[0])) and float(got[1]) == pytest.approx(0.5)


def test_cosface_margin_shrinks_and_x2softmax_margin_grows_with_the_angle() -> None:
    cosface = decision_margin(build_loss("cosface", 2, 3), PHI)
    assert torch.all(cosface[1:] < cosface[:-1])
    # cos θ1 - m = cos(φ - θ1) at φ = π: θ1* = acos(m/2), gap = π - 2·acos(m/2)
    assert float(cosface[-1]) == pytest.approx(math.pi - 2 * math.acos(0.35 / 2), abs=1e-9)
    wide = PHI[PHI > math.radians(100)]
    x2 = decision_margin(build_loss("x2softmax", 2, 3), wide)
    assert torch.all(x2[1:] > x2[:-1])
    assert float(x2[-1]) > float(decision_margin(build_loss("arcface", 2, 3), wide)[-1])


def test_losses_list_names_every_loss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("arcface", "elasticface-cos+", "subcenter-arcface", "contrastive"):
        assert name in out


def test_losses_plot_writes_both_pictures(tmp_path) -> None:
    assert main(["losses", "plot", "--out", str(tmp_path / "img")]) == 0
    for name in ("loss_target_logits.png", "loss_margins.png"):
        data = (tmp_path / "img" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and 20_000 < len(data) < 300_000


def test_losses_toy_runs_and_refuses_bad_names(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "toy.png"
    assert main(["losses", "toy", "--losses", "softmax,arcface", "--epochs", "1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["losses", "toy", "--losses", "softmax,arcfase", "--out", str(out)]) == 1
    assert "unknown loss(es) arcfase" in capsys.readouterr().err

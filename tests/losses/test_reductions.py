"""Reductions and shape properties the catalogue must satisfy."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import build_loss
from training.losses.base import MarginContext
from training.losses.sphereface import psi


def _batch(seed: int = 0, batch: int = 16, dim: int = 8, classes: int = 6):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=gen, dtype=torch.float64), torch.randint(
        0, classes, (batch,), generator=gen
    )


def _same_weights(*losses: torch.nn.Module) -> None:
    for loss in losses[1:]:
        loss.load_state_dict(losses[0].state_dict(), strict=False)


@pytest.mark.parametrize(
    ("name", "zero"),
    [
        ("arcface", {"m": 0.0}),
        ("arcface", {"m": 0.0, "easy_margin": True}),
        ("cosface", {"m": 0.0}),
        ("combined", {"m1": 1.0, "m2": 0.0, "m3": 0.0}),
        ("subcenter-arcface", {"m": 0.0, "k": 1}),
        ("elasticface-arc", {"m": 0.0, "sigma": 0.0}),
        ("elasticface-cos", {"m": 0.0, "sigma": 0.0}),
    ],
)
def test_zero_margin_equals_normface(name: str, zero: dict) -> None:
    x, y = _batch()
    normface = build_loss("normface", 8, 6, s=20.0).double()
    other = build_loss(name, 8, 6, s=20.0, **zero).double()
    with torch.no_grad():
        other.weight.copy_(normface.weight.view_as(other.weight))
    torch.testing.assert_close(other.logits(x, y), normface.logits(x, y), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(other(x, y), normface(x, y), rtol=1e-10, atol=1e-10)


def test_curricularface_zero_margin_with_t_zero_only_reweights_harder_negatives() -> None:
    x, y = _batch(1)
    normface = build_loss("normface", 8, 6, s=20.0).double()
    curricular = build_loss("curricularface", 8, 6, s=20.0, m=0.0).double()
    _same_weights(normface, curricular)
    got, plain = curricular.logits(x, y), normface.logits(x, y)
    harder = plain > plain.gather(1, y[:, None])
    torch.testing.assert_close(got[~harder], plain[~harder])
    torch.testing.assert_close(got[harder], plain[harder] ** 2 / 20.0)  # s·cos·(0 + cos)


def test_x2softmax_matching_cosine_near_zero_behaves_like_normface() -> None:
    # cos θ ≈ 1 - θ²/2: with a = -1/2, h = 0, k = 1 the target logit matches cos θ to O(θ⁴)
    normface = build_loss("normface", 8, 6, s=30.0).double()
    x2 = build_loss("x2softmax", 8, 6, s=30.0, a=-0.5, h=0.0, k=1.0).double()
    _same_weights(normface, x2)
    x, y = _batch(2)
    near = torch.nn.functional.normalize(normface.weight[y], dim=1) + 0.03 * torch.nn.functional.normalize(
        x, dim=1
    )
    theta = torch.acos(torch.nn.functional.cosine_similarity(near, normface.weight[y])).detach()
    assert float(theta.max()) < 0.06
    got, plain = x2.logits(near, y).detach(), normface.logits(near, y).detach()
    assert float((got - plain).abs().max()) < 30.0 * float(theta.max()) ** 4 / 24 + 1e-9
    assert float(x2(near, y).detach()) == pytest.approx(float(normface(near, y).detach()), abs=1e-5)
    far = torch.nn.functional.normalize(x, dim=1)  # at large angles the quadratic departs from the cosine
    assert float((x2.logits(far, y) - normface.logits(far, y)).abs().max().detach()) > 1.0


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_psi_is_continuous_and_decreasing(m: int) -> None:
    theta = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    values = psi(torch.cos(theta), m)
    steps = values[1:] - values[:-1]
    assert float(steps.max()) <= 1e-12  # decreasing
    assert float(steps.abs().max()) < 1e-2  # no jump
    assert float(values[0]) == pytest.approx(1.0)
    assert float(values[-1]) == pytest.approx(1.0 - 2.0 * m)
    for k in range(1, m):  # continuity at each piece boundary kπ/m
        at = torch.tensor(
            [math.cos(k * math.pi / m - 1e-9), math.cos(k * math.pi / m + 1e-9)], dtype=torch.float64
        )
        left, right = psi(at, m).tolist()
        assert left == pytest.approx(right, abs=1e-6)


def _target_curve(loss: torch.nn.Module, theta: torch.Tensor) -> torch.Tensor:
    cos = torch.cos(theta)[:, None]
    n = cos.shape[0]
    ctx = MarginContext(
        rows=torch.arange(n),
        cols=torch.zeros(n, dtype=torch.long),
        labels=torch.zeros(n, dtype=torch.long),
        target_cos=cos[:, 0],
        x_norm=torch.full((n,), 50.0, dtype=cos.dtype),
        w_norm=torch.ones(1, dtype=cos.dtype),
    )
    return loss.margin_logits(cos, ctx)[:, 0]


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("arcface", {"m": 0.5}),
        ("arcface", {"m": 1.2}),
        ("combined", {}),
        ("combined", {"m1": 1.5, "m2": 0.4, "m3": 0.1}),
        ("magface", {}),
        ("curricularface", {}),
        ("elasticface-arc", {}),
        ("airface", {}),
        ("x2softmax", {}),
        ("sphereface", {"fixed_lambda": 0.0}),
    ],
)
def test_target_logit_decreases_on_zero_to_pi(name: str, hp: dict) -> None:
    loss = build_loss(name, 4, 3, **hp).double().eval()
    theta = torch.linspace(0, math.pi, 5001, dtype=torch.float64)
    curve = _target_curve(loss, theta)
    assert float((curve[1:] - curve[:-1]).max()) <= 1e-9


@pytest.mark.parametrize("hp", [{"fallback": False}, {"easy_margin": True}])
def test_raw_arcface_and_easy_margin_are_not_monotone(hp: dict) -> None:
    # raw cos(θ + m) rises past θ = π - m; easy_margin jumps up from cos(π/2 + m) to 0 at θ = π/2
    loss = build_loss("arcface", 4, 3, m=0.5, **hp).double()
    theta = torch.linspace(0, math.pi, 5001, dtype=torch.float64)
    curve = _target_curve(loss, theta)
    assert float((curve[1:] - curve[:-1]).max()) > 1e-3


@pytest.mark.parametrize("name", ["arcface", "cosface", "magface", "curricularface", "adaface", "x2softmax"])
def test_straight_through_keeps_value_and_takes_normface_gradient(name: str) -> None:
    x, y = _batch(4)
    x = x * 20
    true = build_loss(name, 8, 6).double()
    st = build_loss(name, 8, 6, straight_through=True).double()
    _same_weights(true, st)
    torch.testing.assert_close(st.logits(x, y), true.logits(x, y))
    xs = x.clone().requires_grad_(True)
    (st.logits(xs, y) * torch.linspace(-1, 1, 6, dtype=torch.float64)).sum().backward()
    s = true.s
    plain = build_loss("normface", 8, 6, s=s).double()
    _same_weights(true, plain)
    xp = x.clone().requires_grad_(True)
    plain_logits = plain.logits(xp, y)
    if name == "curricularface":  # its non-target reweighting keeps its own gradient
        plain_logits = true.logits(xp, y).detach() + (plain_logits - plain_logits.detach())
    (plain_logits * torch.linspace(-1, 1, 6, dtype=torch.float64)).sum().backward()
    if name != "curricularface":
        torch.testing.assert_close(xs.grad, xp.grad)
    xt = x.clone().requires_grad_(True)
    (true.logits(xt, y) * torch.linspace(-1, 1, 6, dtype=torch.float64)).sum().backward()
    if name != "cosface":  # cos θ - m has the plain gradient anyway
        assert float((xt.grad - xs.grad).abs().max()) > 1e-6  # the true gradient differs

"""Target-logit curves f(θ) and the angular decision margin they imply, computed by the loss modules.

For two classes whose centres are φ apart (in a plane), a sample between them at θ1 from centre 1 and
θ2 = φ - θ1 from centre 2 is given to class 1 with margin where f(θ1) >= g(θ2) (g: the non-target logit,
cos θ for all but AirFace). The boundary θ1* solves f(θ1) = g(φ - θ1); by symmetry class 2's boundary is
at θ1 = φ - θ1*, so the angular gap between the two classes' regions is φ - 2θ1*. Where f(0) < g(φ) a
class cannot win even at its own centre: the margin is infeasible (NaN).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.losses import build_loss
from training.losses.adaptive import AdaFace
from training.losses.angular import AirFace
from training.losses.base import ClassificationLoss, MarginContext


def target_over_scale(loss: ClassificationLoss, theta: Tensor, x_norm: float = 1.0) -> Tensor:
    """f(θ): the target logit divided by the loss's scale, for a sample of norm ``x_norm``."""
    cos = torch.cos(theta.to(torch.float64))[:, None]
    n = cos.shape[0]
    ctx = MarginContext(
        rows=torch.arange(n),
        cols=torch.zeros(n, dtype=torch.long),
        labels=torch.zeros(n, dtype=torch.long),
        target_cos=cos[:, 0],
        x_norm=torch.full((n,), float(x_norm), dtype=torch.float64),
        w_norm=torch.ones(1, dtype=torch.float64),
    )
    with torch.no_grad():
        logits = loss.double().eval().margin_logits(cos, ctx)[:, 0]
    scale = getattr(loss, "s", None) or x_norm
    return logits / scale


def other_over_scale(loss: ClassificationLoss, theta: Tensor) -> Tensor:
    """g(θ): a non-target logit divided by the scale."""
    if isinstance(loss, AirFace):
        return (math.pi - 2.0 * theta) / math.pi
    return torch.cos(theta)


def decision_margin(
    loss: ClassificationLoss, phi: Tensor, x_norm: float = 1.0, iterations: int = 60
) -> Tensor:
    """The angular gap φ - 2θ1* between two classes whose centres are φ apart (radians; NaN if infeasible)."""
    phi = phi.to(torch.float64)
    lo, hi = torch.zeros_like(phi), phi / 2

    def h(t1: Tensor) -> Tensor:
        return target_over_scale(loss, t1, x_norm) - other_over_scale(loss, phi - t1)

    feasible = h(lo) >= 0
    for _ in range(iterations):  # h decreases in θ1: bisection
        mid = (lo + hi) / 2
        positive = h(mid) >= 0
        lo = torch.where(positive, mid, lo)
        hi = torch.where(positive, hi, mid)
    gap = phi - (lo + hi)
    return torch.where(feasible, gap, torch.full_like(gap, float("nan")))


def curve_losses() -> list[tuple[str, ClassificationLoss, dict]]:
    """(label, loss, options) drawn in the pictures; options: x_norm, or a band over norms."""
    d, c = 2, 10
    return [
        ("softmax / normface / adacos (no margin)", build_loss("normface", d, c), {}),
        ("sphereface, lsoftmax (m=4, λ=5)", build_loss("sphereface", d, c, fixed_lambda=5.0), {}),
        ("cosface (m=0.35) / elasticface-cos mean", build_loss("cosface", d, c), {}),
        (
            "arcface (m=0.5) / curricularface / subcenter / elasticface-arc mean",
            build_loss("arcface", d, c),
            {},
        ),
        ("combined (1, 0.3, 0.2)", build_loss("combined", d, c), {}),
        ("airface (m=0.45)", build_loss("airface", d, c), {}),
        ("x2softmax (a=-0.9, h=0, k=0.65)", build_loss("x2softmax", d, c), {}),
        (
            "magface, ‖x‖ = 60 (band: 10 to 110)",
            build_loss("magface", d, c),
            {"band": (10.0, 110.0), "x_norm": 60.0},
        ),
        (
            "adaface (m=0.4), ẑ = 0 (band: -1 to 1)",
            _adaface_at_mean(),
            {"band": (0.0, 100.0), "x_norm": 50.0},
        ),
    ]


def _adaface_at_mean() -> AdaFace:
    """AdaFace with μ = 50, σ = 50, h = 1: norms 0 and 100 give ẑ = -1 and +1."""
    loss = build_loss("adaface", 2, 10, h=1.0)
    loss.norm_mean.fill_(50.0)
    loss.norm_std.fill_(50.0 - loss.eps)
    return loss

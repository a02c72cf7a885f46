"""Losses defined directly on the angle: AirFace / Li-ArcFace (arXiv 1907.12256), X2-Softmax (2312.05281)."""

from __future__ import annotations

import math

from torch import Tensor

from training.losses.base import MarginContext, ScaledCosineLoss, check_number, safe_acos


class AirFace(ScaledCosineLoss):
    """Every logit is linear in the angle: target s·(π - 2(θ_y + m))/π, others s·(π - 2θ_j)/π."""

    def __init__(
        self, embedding_size: int, num_classes: int, *, s: float = 64.0, m: float = 0.45, **kwargs: bool
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m = check_number("m", m, low=0.0, high=math.pi / 2)

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        theta = safe_acos(cos)
        logits = self.s * (math.pi - 2.0 * theta) / math.pi
        plain = logits[ctx.rows, ctx.cols]
        target = self.s * (math.pi - 2.0 * (theta[ctx.rows, ctx.cols] + self.m)) / math.pi
        return self.put_target(logits, ctx, target, plain)


class X2Softmax(ScaledCosineLoss):
    """Target logit s·(a·(θ_y - h)² + k) (a < 0), others s·cos θ_j."""

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        s: float = 64.0,
        a: float = -0.9,
        h: float = 0.0,
        k: float = 0.65,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.a = check_number("a", a, high=-1e-6)  # a < 0: the quadratic must decrease in θ
        self.h = check_number("h", h, high=0.0)  # vertex at or left of θ = 0, so f decreases on [0, π]
        self.k = check_number("k", k)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        return self.a * (safe_acos(target) - self.h) ** 2 + self.k

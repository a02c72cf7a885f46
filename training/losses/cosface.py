"""Additive cosine margin: CosFace / AM-Softmax (CVPR 2018)."""

from __future__ import annotations

from torch import Tensor

from training.losses.base import MarginContext, ScaledCosineLoss, check_number


class CosFace(ScaledCosineLoss):
    """Target logit s·(cos θ_y - m), others s·cos θ_j. The AM-Softmax preset is s = 30, m = 0.35."""

    def __init__(
        self, embedding_size: int, num_classes: int, *, s: float = 64.0, m: float = 0.35, **kwargs: bool
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m = check_number("m", m, low=0.0, high=2.0)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        return target - self.m

"""Multiplicative angular margin: L-Softmax (ICML 2016) and SphereFace / A-Softmax (CVPR 2017)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.losses.base import ClassificationLoss, MarginContext, check_number, check_positive_int


def multiple_angle_cos(cos: Tensor, m: int) -> Tensor:
    """cos(mθ) from cos θ: Σ_n (-1)^n·C(m, 2n)·cos^(m-2n)θ·(1 - cos²θ)^n (a polynomial: finite gradient)."""
    sin_sq = 1.0 - cos * cos
    total = torch.zeros_like(cos)
    for n in range(m // 2 + 1):
        total = total + (-1) ** n * math.comb(m, 2 * n) * cos ** (m - 2 * n) * sin_sq**n
    return total


def psi(cos: Tensor, m: int) -> Tensor:
    """ψ(θ) = (-1)^k·cos(mθ) - 2k on [kπ/m, (k+1)π/m]: continuous and decreasing on [0, π]."""
    with torch.no_grad():
        theta = torch.acos(cos.clamp(-1.0, 1.0))
        k = torch.floor(theta * m / math.pi).clamp(0, m - 1)
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * multiple_angle_cos(cos, m) - 2.0 * k


class LSoftmax(ClassificationLoss):
    """Target logit ‖W_y‖‖x‖·(λ·cos θ_y + ψ(θ_y))/(1 + λ), others W_jᵀx (no bias).

    λ anneals with the training step t as max(lambda_min, lambda_base·(1 + lambda_gamma·t)^-lambda_power);
    ``fixed_lambda`` pins it (0 gives the pure ψ). The step counter is the buffer ``iteration``.
    """

    needs_raw_norm = True
    normalize_weight = False

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        m: int = 4,
        lambda_base: float = 1000.0,
        lambda_gamma: float = 0.12,
        lambda_power: float = 1.0,
        lambda_min: float = 5.0,
        fixed_lambda: float | None = None,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, **kwargs)
        self.m = check_positive_int("m (an integer angular multiplier)", m)
        self.lambda_base = check_number("lambda_base", lambda_base, low=0.0)
        self.lambda_gamma = check_number("lambda_gamma", lambda_gamma, low=0.0)
        self.lambda_power = check_number("lambda_power", lambda_power, low=0.0)
        self.lambda_min = check_number("lambda_min", lambda_min, low=0.0)
        self.fixed_lambda = None if fixed_lambda is None else check_number("fixed_lambda", fixed_lambda, 0.0)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    @property
    def current_lambda(self) -> float:
        return float(self.lambda_tensor())

    def lambda_tensor(self) -> Tensor:
        """λ at the current iteration, as a 0-d tensor on the buffer's device (no host sync)."""
        if self.fixed_lambda is not None:
            return torch.tensor(self.fixed_lambda, dtype=torch.float64)
        t = self.iteration.to(torch.float64)
        return torch.clamp(
            self.lambda_base * (1.0 + self.lambda_gamma * t) ** -self.lambda_power, min=self.lambda_min
        )

    def update_state(self, cos: Tensor, ctx: MarginContext) -> None:
        self.iteration += 1

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        magnitude = ctx.x_norm[:, None]
        if not self.normalize_weight:
            magnitude = magnitude * ctx.w_norm[None, :]
        logits = magnitude * cos
        target = cos[ctx.rows, ctx.cols]
        lam = self.lambda_tensor().to(device=cos.device, dtype=cos.dtype)
        target_scale = ctx.x_norm[ctx.rows]
        if not self.normalize_weight:
            target_scale = target_scale * ctx.w_norm[ctx.cols]
        blended = (lam * target + psi(target, self.m)) / (1.0 + lam)
        return self.put_target(logits, ctx, target_scale * blended, target_scale * target)

    @torch.no_grad()
    def scores(self, embeddings: Tensor) -> Tensor:
        if self.normalize_weight:
            return super().scores(embeddings)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return embeddings.float() @ self.weight.float().t()


class SphereFace(LSoftmax):
    """A-Softmax: as L-Softmax with ‖W_j‖ = 1, so logits are ‖x‖·cos θ_j."""

    normalize_weight = True

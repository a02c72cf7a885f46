"""Losses with running state: AdaCos (CVPR 2019), CurricularFace (CVPR 2020), AdaFace (CVPR 2022).

All state lives in buffers (checkpointed with the model) and advances only in a training forward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.losses.base import (
    ClassificationLoss,
    MarginContext,
    ScaledCosineLoss,
    arc_margin_cos,
    check_number,
    safe_acos,
)


class AdaCos(ClassificationLoss):
    """Logits s̃·cos θ_j, no margin. Fixed s̃ = √2·ln(C - 1); dynamic s̃ follows the batch (buffer ``scale``).

    Dynamic: s̃_t = ln(B_avg)/cos(min(π/4, θ_med)), B_avg = mean_i Σ_{j≠y_i} exp(s̃_{t-1}·cos θ_ij).
    """

    def __init__(
        self, embedding_size: int, num_classes: int, *, dynamic: bool = True, **kwargs: bool
    ) -> None:
        super().__init__(embedding_size, num_classes, **kwargs)
        if num_classes < 3:
            raise ValueError(f"adacos needs at least 3 classes (s = √2·ln(C - 1)), got {num_classes}")
        self.dynamic = bool(dynamic)
        self.fixed_scale = math.sqrt(2.0) * math.log(num_classes - 1)
        self.register_buffer("scale", torch.tensor(self.fixed_scale))

    def update_state(self, cos: Tensor, ctx: MarginContext) -> None:
        if not self.dynamic:
            return
        s = self.scale.to(cos.dtype)
        all_classes = ctx.sum_over_classes(torch.exp(s * cos).sum(dim=1))
        b_avg = (all_classes - torch.exp(s * ctx.target_cos)).mean()
        theta_med = torch.median(safe_acos(ctx.target_cos))
        new_scale = torch.log(b_avg) / torch.cos(torch.clamp(theta_med, max=math.pi / 4))
        # keep the old scale if the batch gave no usable statistic (no host sync: stays on device)
        self.scale.copy_(torch.where(torch.isfinite(new_scale), new_scale, self.scale.to(new_scale.dtype)))

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        return (self.scale.to(cos.dtype) if self.dynamic else self.fixed_scale) * cos


class CurricularFace(ScaledCosineLoss):
    """Target s·cos(θ_y + m) with the monotone fallback; a non-target with cos θ_j > cos(θ_y + m) (a hard
    example) becomes s·cos θ_j·(t + cos θ_j). t (buffer) ← 0.01·mean(cos θ_y) + 0.99·t each training step.
    """

    def __init__(
        self, embedding_size: int, num_classes: int, *, s: float = 64.0, m: float = 0.5, **kwargs: bool
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m = check_number("m", m, low=0.0, high=math.pi / 2)
        self.register_buffer("t", torch.zeros(()))

    def update_state(self, cos: Tensor, ctx: MarginContext) -> None:
        self.t.copy_(0.01 * ctx.target_cos.mean() + 0.99 * self.t)

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        t = self.t.to(cos.dtype)
        with torch.no_grad():
            hard = cos > torch.cos(safe_acos(ctx.target_cos) + self.m)[:, None]
        modulated = torch.where(hard, cos * (t + cos), cos)
        target = cos[ctx.rows, ctx.cols]
        margin_target = arc_margin_cos(target, self.m)
        return self.put_target(self.s * modulated, ctx, self.s * margin_target, self.s * target)


class AdaFace(ScaledCosineLoss):
    """Target s·(cos(θ_y - m·ẑ) - (m + m·ẑ)), ẑ = clip(h·(‖x‖ - μ)/(σ + ε), -1, 1), others s·cos θ_j.

    μ, σ (buffers ``norm_mean``, ``norm_std``) are EMAs (momentum 0.01) of the batch's feature norms,
    clipped to [0.001, 100] and detached. Reads ‖x‖: feed the unnormalised backbone output.
    """

    needs_raw_norm = True
    eps = 1e-3

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        s: float = 64.0,
        m: float = 0.4,
        h: float = 0.333,
        momentum: float = 0.01,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m = check_number("m", m, low=0.0, high=math.pi / 2)
        self.h = check_number("h", h, low=0.0)
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0)
        self.register_buffer("norm_mean", torch.tensor(20.0))
        self.register_buffer("norm_std", torch.tensor(100.0))

    def safe_norms(self, x_norm: Tensor) -> Tensor:
        return x_norm.detach().clamp(0.001, 100.0)

    def update_state(self, cos: Tensor, ctx: MarginContext) -> None:
        norms = self.safe_norms(ctx.x_norm)
        self.norm_mean.copy_(self.momentum * norms.mean() + (1.0 - self.momentum) * self.norm_mean)
        if norms.numel() > 1:  # the std of a single sample is undefined
            self.norm_std.copy_(self.momentum * norms.std() + (1.0 - self.momentum) * self.norm_std)

    def margin_scaler(self, x_norm: Tensor) -> Tensor:
        """ẑ per sample, in [-1, 1]."""
        mean, std = self.norm_mean.to(x_norm.dtype), self.norm_std.to(x_norm.dtype)
        return torch.clamp(self.h * (self.safe_norms(x_norm) - mean) / (std + self.eps), -1.0, 1.0)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        z = self.margin_scaler(ctx.x_norm)[ctx.rows]
        theta = torch.clamp(safe_acos(target) - self.m * z, self.eps, math.pi - self.eps)
        return torch.cos(theta) - (self.m + self.m * z)

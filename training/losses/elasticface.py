"""ElasticFace (CVPRW 2022): the margin of each sample is drawn from N(m, σ) at every training step."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.losses.base import MarginContext, ScaledCosineLoss, arc_margin_cos, check_number


class ElasticFace(ScaledCosineLoss):
    """``kind="arc"``: target s·cos(θ_y + m_i) (monotone fallback); ``kind="cos"``: s·(cos θ_y - m_i).

    m_i ~ N(m, σ) per sample in training (the mean m in eval mode). ``plus=True`` (ElasticFace+) sorts
    the drawn margins and gives the largest to the samples with the smallest target cosine.
    ``last_margins`` holds the per-sample margins of the most recent call, for inspection.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        kind: str = "arc",
        s: float = 64.0,
        m: float | None = None,
        sigma: float = 0.05,
        plus: bool = False,
        fallback: bool = True,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        if kind not in ("arc", "cos"):
            raise ValueError(f"elasticface kind must be 'arc' or 'cos', got {kind!r}")
        self.kind = kind
        default_m = 0.5 if kind == "arc" else 0.35
        self.m = check_number("m", default_m if m is None else m, low=0.0, high=math.pi / 2)
        self.sigma = check_number("sigma", sigma, low=0.0)
        self.plus = bool(plus)
        self.fallback = bool(fallback)
        self.last_margins: Tensor | None = None

    def draw_margins(self, ctx: MarginContext, dtype: torch.dtype) -> Tensor:
        """One margin per sample of the (possibly all-gathered) batch."""
        batch = ctx.target_cos.shape[0]
        device = ctx.target_cos.device
        if not self.training:
            return torch.full((batch,), self.m, dtype=dtype, device=device)
        margins = torch.normal(self.m, self.sigma, (batch,), device=device).to(dtype)
        if self.plus:
            ascending_margin = torch.sort(margins).values
            order = torch.argsort(ctx.target_cos, descending=True)  # largest cosine first
            margins = torch.empty_like(margins).index_copy_(0, order, ascending_margin)
        return margins

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        margins = self.draw_margins(ctx, target.dtype)
        self.last_margins = margins.detach()
        m = margins[ctx.rows]
        if self.kind == "cos":
            return target - m
        return arc_margin_cos(target, m, fallback=self.fallback)

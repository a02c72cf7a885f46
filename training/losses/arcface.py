"""Additive angular margin: ArcFace (CVPR 2019), insightface's combined margin, sub-center ArcFace."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from training.losses.base import (
    MarginContext,
    ScaledCosineLoss,
    arc_margin_cos,
    check_number,
    check_positive_int,
    safe_acos,
)


class ArcFace(ScaledCosineLoss):
    """Target logit s·cos(θ_y + m), with the monotone fallback (or ``easy_margin``); others s·cos θ_j.

    ``fallback=False`` gives the raw cos(θ + m), which rises again past θ = π - m (unstable).
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        s: float = 64.0,
        m: float = 0.5,
        easy_margin: bool = False,
        fallback: bool = True,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m = check_number("m", m, low=0.0, high=math.pi / 2)
        self.easy_margin = bool(easy_margin)
        self.fallback = bool(fallback)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        return arc_margin_cos(target, self.m, easy_margin=self.easy_margin, fallback=self.fallback)


class CombinedMargin(ScaledCosineLoss):
    """Target logit s·(cos(m1·θ_y + m2) - m3), others s·cos θ_j (insightface's combined margin).

    Past m1·θ + m2 = π the cosine would rise again; there the target continues as the cosine curve
    shifted to join continuously (cos θ - cos θ0 - 1 - m3, θ0 = (π - m2)/m1), so it stays decreasing.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        s: float = 64.0,
        m1: float = 1.0,
        m2: float = 0.3,
        m3: float = 0.2,
        **kwargs: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)
        self.m1 = check_number("m1", m1, low=1e-3, high=10.0)
        self.m2 = check_number("m2", m2, low=0.0, high=math.pi / 2)
        self.m3 = check_number("m3", m3, low=0.0, high=2.0)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        main = torch.cos(self.m1 * safe_acos(target) + self.m2) - self.m3
        theta0 = (math.pi - self.m2) / self.m1
        if theta0 >= math.pi:
            return main
        cos0 = math.cos(theta0)
        return torch.where(target > cos0, main, target - cos0 - 1.0 - self.m3)


class SubcenterArcFace(ArcFace):
    """ArcFace where cos θ_j is the max over K sub-centres of class j; ``weight`` is [C, K, D]."""

    def __init__(self, embedding_size: int, num_classes: int, *, k: int = 3, **kwargs: object) -> None:
        self.k = check_positive_int("k (sub-centres per class)", k)
        super().__init__(embedding_size, num_classes, **kwargs)  # type: ignore[arg-type]

    def weight_shape(self, rows: int) -> tuple[int, ...]:
        return (rows, self.k, self.embedding_size)

    def class_cosine(self, x_hat: Tensor, weight: Tensor) -> Tensor:
        w_hat = F.normalize(weight, dim=-1)
        cos = x_hat @ w_hat.reshape(-1, self.embedding_size).t()
        return cos.view(x_hat.shape[0], weight.shape[0], self.k).amax(dim=-1)

    @torch.no_grad()
    def outlier_mask(self, embeddings: Tensor, labels: Tensor, threshold_degrees: float = 75.0) -> Tensor:
        """True for samples more than ``threshold_degrees`` from their class's dominant sub-centre.

        The dominant sub-centre of a class is the one nearest to most of its samples among those given
        (pass the whole training set's embeddings, in chunks if needed, to clean a data set).
        """
        x_hat = F.normalize(embeddings.float(), dim=1)
        w_hat = F.normalize(self.weight.float(), dim=-1)
        labels = labels.long()
        own = torch.einsum("bd,bkd->bk", x_hat, w_hat[labels])  # [B, K]
        nearest = own.argmax(dim=1)
        votes = torch.zeros(self.num_classes * self.k, device=embeddings.device)
        votes.index_add_(0, labels * self.k + nearest, torch.ones_like(nearest, dtype=votes.dtype))
        dominant = votes.view(self.num_classes, self.k).argmax(dim=1)
        angle = torch.rad2deg(torch.acos(own.gather(1, dominant[labels][:, None]).squeeze(1).clamp(-1, 1)))
        return angle > threshold_degrees

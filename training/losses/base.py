"""Shared machinery of the classification losses: float32 cosines, the margin context, cross-entropy.

A classification loss is split in two so that Partial FC can shard the class centres:
``class_cosine`` gives cos θ_j for the columns at hand, ``margin_logits`` turns those cosines into the
logits that go into cross-entropy. Every statistic that spans all classes goes through
``MarginContext.sum_over_classes`` (an all-reduce under Partial FC, the identity otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# cos θ is clamped to [-1 + eps, 1 - eps] before arccos so that d/dcos arccos stays finite (~2e3 at most).
ACOS_EPS = 1e-7


def compute_dtype(tensor: Tensor) -> torch.dtype:
    """float64 stays float64 (gradcheck); everything else (bf16, fp16, fp32) is computed in float32."""
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def safe_acos(cos: Tensor) -> Tensor:
    """arccos with the argument clamped away from ±1, so neither value nor gradient is NaN/inf."""
    return torch.acos(cos.clamp(-1.0 + ACOS_EPS, 1.0 - ACOS_EPS))


def arc_margin_cos(
    cos: Tensor, m: float | Tensor, *, easy_margin: bool = False, fallback: bool = True
) -> Tensor:
    """cos(θ + m) made monotone on [0, π] (insightface / MagFace / CurricularFace rule).

    ``fallback``: where cos θ <= cos(π - m) use cos θ - m·sin(π - m) instead.
    ``easy_margin``: keep cos θ wherever cos θ <= 0. ``m`` may be a per-sample tensor.
    """
    shifted = torch.cos(safe_acos(cos) + m)
    if easy_margin:
        return torch.where(cos > 0, shifted, cos)
    if not fallback:
        return shifted
    m_t = torch.as_tensor(m, dtype=cos.dtype, device=cos.device)
    threshold = torch.cos(math.pi - m_t)
    drop = torch.sin(math.pi - m_t) * m_t
    return torch.where(cos > threshold, shifted, cos - drop)


def identity_sum(partial: Tensor) -> Tensor:
    return partial


@dataclass
class MarginContext:
    """What a loss may know besides the cosine matrix (one row per sample, one column per class here).

    rows, cols: the samples whose target class is among the columns, and that column.
    target_cos: cos θ_y for every sample, detached (for statistics only).
    x_norm: ‖x‖ per sample; w_norm: ‖W_j‖ per column (both with gradient).
    sum_over_classes: completes a per-sample sum over the local columns to a sum over all classes.
    """

    rows: Tensor
    cols: Tensor
    labels: Tensor
    target_cos: Tensor
    x_norm: Tensor
    w_norm: Tensor
    sum_over_classes: Callable[[Tensor], Tensor] = identity_sum


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_number(name: str, value: object, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return float(value)


class ClassificationLoss(nn.Module):
    """Base of every softmax-family loss: ``loss(x, y)`` is the scalar, ``logits(x, y)`` the [B, C] logits.

    The class centres are the parameter ``weight`` ([C, D]; sub-center ArcFace: [C, K, D]).
    ``straight_through=True`` keeps the margin in the forward value only (insightface's behaviour).
    """

    needs_raw_norm = False  # True: the loss reads ‖x‖, so the backbone output must not be normalised
    supports_partial_fc = True  # logits are elementwise in cos θ_j given per-sample statistics
    has_classifier = True

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        straight_through: bool = False,
        allocate_weight: bool = True,
    ) -> None:
        super().__init__()
        self.embedding_size = check_positive_int("embedding_size", embedding_size)
        self.num_classes = check_positive_int("num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.straight_through = bool(straight_through)
        if allocate_weight:
            self.weight = nn.Parameter(self.init_weight(num_classes))
        else:  # Partial FC keeps its own shard of the centres
            self.register_parameter("weight", None)

    def weight_shape(self, rows: int) -> tuple[int, ...]:
        return (rows, self.embedding_size)

    def init_weight(self, rows: int) -> Tensor:
        return torch.empty(self.weight_shape(rows)).normal_(0.0, 0.01)

    def class_cosine(self, x_hat: Tensor, weight: Tensor) -> Tensor:
        """cos θ_j between unit embeddings [B, D] and the given class centres."""
        return x_hat @ F.normalize(weight, dim=-1).t()

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        raise NotImplementedError

    def update_state(self, cos: Tensor, ctx: MarginContext) -> None:
        """Advance running statistics (training forward only, no gradient). Stateless by default."""

    def per_sample_penalty(self, x_norm: Tensor) -> Tensor | None:
        """A per-sample term added to the cross-entropy (MagFace's g(a)); None for most losses."""
        return None

    def put_target(self, logits: Tensor, ctx: MarginContext, target: Tensor, plain: Tensor) -> Tensor:
        """Write the margin-modified target logits (``plain``: the same without margin) into ``logits``."""
        if self.straight_through:
            target = plain + (target - plain).detach()
        return logits.index_put((ctx.rows, ctx.cols), target.to(logits.dtype))

    def _cosine_and_context(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, MarginContext]:
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must have shape [B, {self.embedding_size}], got {tuple(embeddings.shape)}"
            )
        if labels.shape != embeddings.shape[:1]:
            raise ValueError(f"labels must have shape [{embeddings.shape[0]}], got {tuple(labels.shape)}")
        dtype = compute_dtype(embeddings)
        x = embeddings.to(dtype)
        weight = self.weight.to(dtype)
        cos = self.class_cosine(F.normalize(x, dim=1), weight)
        labels = labels.long()
        rows = torch.arange(x.shape[0], device=x.device)
        ctx = MarginContext(
            rows=rows,
            cols=labels,
            labels=labels,
            target_cos=cos.detach()[rows, labels],
            x_norm=x.norm(dim=1),
            w_norm=weight.norm(dim=-1),
        )
        return cos, ctx

    def _logits(self, embeddings: Tensor, labels: Tensor, update: bool) -> Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cos, ctx = self._cosine_and_context(embeddings, labels)
            if update:
                with torch.no_grad():
                    self.update_state(cos.detach(), ctx)
            return self.margin_logits(cos, ctx)

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The [B, C] logits after margin and scale, with the current state (no state update)."""
        return self._logits(embeddings, labels, update=False)

    @torch.no_grad()
    def scores(self, embeddings: Tensor) -> Tensor:
        """Margin-free [B, C] class scores for prediction (argmax): cos θ_j, or W_jᵀx(+b) if unnormalised."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            dtype = compute_dtype(embeddings)
            return self.class_cosine(F.normalize(embeddings.to(dtype), dim=1), self.weight.to(dtype))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        logits = self._logits(embeddings, labels, update=self.training)
        loss = F.cross_entropy(logits, labels.long())
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            penalty = self.per_sample_penalty(embeddings.to(compute_dtype(embeddings)).norm(dim=1))
        if penalty is not None:
            loss = loss + penalty.mean()
        return loss


class ScaledCosineLoss(ClassificationLoss):
    """Losses whose non-target logits are s·cos θ_j and whose target logit is s·f(cos θ_y)."""

    def __init__(self, embedding_size: int, num_classes: int, *, s: float, **kwargs: bool) -> None:
        super().__init__(embedding_size, num_classes, **kwargs)
        self.s = check_number("s", s, low=1e-6)

    def target_cos(self, target: Tensor, ctx: MarginContext) -> Tensor:
        """f(cos θ_y) for the samples ``ctx.rows`` (target cosines ``target``)."""
        return target

    def margin_logits(self, cos: Tensor, ctx: MarginContext) -> Tensor:
        target = cos[ctx.rows, ctx.cols]
        return self.put_target(self.s * cos, ctx, self.s * self.target_cos(target, ctx), self.s * target)

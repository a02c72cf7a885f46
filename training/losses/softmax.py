"""Plain softmax (FC + bias) and NormFace (s·cos θ)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.base import ClassificationLoss, ScaledCosineLoss, compute_dtype


class Softmax(ClassificationLoss):
    """Logits W_jᵀx + b_j, cross-entropy. Reads the raw embedding (its norm matters)."""

    needs_raw_norm = True
    supports_partial_fc = False  # the bias and unnormalised logits are outside Partial FC's cosine form

    def __init__(self, embedding_size: int, num_classes: int, *, bias: bool = True, **kwargs: bool) -> None:
        super().__init__(embedding_size, num_classes, **kwargs)
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def init_weight(self, rows: int) -> Tensor:
        # nn.Linear's default scale: unnormalised logits need a sensible starting magnitude
        bound = self.embedding_size**-0.5
        return torch.empty(self.weight_shape(rows)).uniform_(-bound, bound)

    def _logits(self, embeddings: Tensor, labels: Tensor, update: bool) -> Tensor:
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must have shape [B, {self.embedding_size}], got {tuple(embeddings.shape)}"
            )
        dtype = compute_dtype(embeddings)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.to(dtype)
            return F.linear(embeddings.to(dtype), self.weight.to(dtype), bias)

    @torch.no_grad()
    def scores(self, embeddings: Tensor) -> Tensor:
        return self._logits(embeddings, torch.zeros(embeddings.shape[0], dtype=torch.long), update=False)


class NormFace(ScaledCosineLoss):
    """N-Softmax: every logit is s·cos θ_j (no margin)."""

    def __init__(self, embedding_size: int, num_classes: int, *, s: float = 30.0, **kwargs: bool) -> None:
        super().__init__(embedding_size, num_classes, s=s, **kwargs)

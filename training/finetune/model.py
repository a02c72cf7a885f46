"""The model trained when fine-tuning: backbone + head, an optional compatibility term, frozen BN stats."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.finetune.config import CompatConfig


class FineTuneModel(nn.Module):
    """``forward(images, labels)`` → loss (+ compatibility term); the frozen old model is not trained."""

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        *,
        compat: CompatConfig | None = None,
        old_backbone: nn.Module | None = None,
        old_head: nn.Module | None = None,
        frozen_bn: bool = True,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.compat, self.frozen_bn, self.autocast_dtype = compat, frozen_bn, autocast_dtype
        # kept outside the module tree: not in state_dict, not in the optimiser, never in train mode
        self._old = (old_backbone, old_head)
        self.last_compat: float | None = None

    def train(self, mode: bool = True) -> FineTuneModel:
        super().train(mode)
        if mode and self.frozen_bn:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.backbone(images)
        with torch.autocast(images.device.type, dtype=self.autocast_dtype):
            return self.backbone(images)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = self._embed(images).float()
        loss = self.head(embeddings, labels)
        if self.compat is None:
            return loss
        old_backbone, old_head = self._old
        if self.compat.kind == "cosine":
            with torch.no_grad():
                old = old_backbone(images).float()
            term = (1.0 - F.cosine_similarity(embeddings, old, dim=1)).mean()
        else:
            term = old_head(embeddings, labels)
        self.last_compat = float(term.detach())
        return loss + self.compat.weight * term

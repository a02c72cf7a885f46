"""The loss library: every loss of docs/losses.md behind one registry.

loss = build_loss("arcface", embedding_size, num_classes, s=64, m=0.5)
value = loss(embeddings, labels)          # scalar
logits = loss.logits(embeddings, labels)  # [B, C] after margin and scale
"""

from training.losses.base import ClassificationLoss, MarginContext
from training.losses.composite import LossWithAux
from training.losses.registry import (
    AUX_TERMS,
    CLASSIFICATION_LOSSES,
    LOSS_NAMES,
    build_loss,
    build_loss_from_config,
    describe_losses,
)

__all__ = [
    "AUX_TERMS",
    "CLASSIFICATION_LOSSES",
    "LOSS_NAMES",
    "ClassificationLoss",
    "LossWithAux",
    "MarginContext",
    "build_loss",
    "build_loss_from_config",
    "describe_losses",
]

"""A tiny backbone for fast tests (no BatchNorm, so per-process batch statistics cannot differ between
1-process and N-process runs: the DDP equivalence test compares exact arithmetic, not BN semantics)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, embedding_size: int = 16, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=4, padding=2),
            nn.PReLU(8),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.PReLU(16),
            nn.AdaptiveAvgPool2d(4),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(16 * 16, embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).flatten(1)))


def tiny_net(embedding_size: int = 16, dropout: float = 0.0) -> TinyNet:
    return TinyNet(embedding_size, dropout)

"""A very small face-embedding network with the layers real backbones use (Conv, BatchNorm, PReLU,
Linear, BatchNorm1d), so export tests that need several exports stay fast. Built by the trainer's
``package.module:factory`` backbone syntax: ``tests.export.tiny_backbone:build``."""

from __future__ import annotations

from torch import nn


def build(embedding_size: int = 64, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=4, padding=1, bias=False),  # 112 → 28
        nn.BatchNorm2d(16),
        nn.PReLU(16),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),  # 28 → 14
        nn.BatchNorm2d(32),
        nn.PReLU(32),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32, bias=False),  # 14 → 7, depthwise
        nn.BatchNorm2d(32),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32 * 7 * 7, embedding_size),
        nn.BatchNorm1d(embedding_size),
    )

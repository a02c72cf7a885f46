"""SFace (Zhong et al. 2021) as OpenCV zoo ships it: a MobileNet-style stack of 27 convolutions.

conv3×3 (32) → 13 × [depthwise 3×3 → pointwise 1×1], each conv followed by BN (eps 1e-3) and PReLU,
→ BN (eps 2e-5) → flatten 1024×7×7 → fully connected (128) → BN. 9.7M parameters. The published ONNX scales
its input inside the graph, ``(x − 127.5) / 128`` on RGB 0…255; this module takes the trainer's RGB
``(x − 127.5) / 127.5`` and applies the factor 127.5/128, so the same weights give the same embeddings.
Weights load from the ONNX initializers with ``training.onnx_import``.
"""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.registry import register_backbone

# (depthwise stride, pointwise output channels) for conv_2 … conv_14.
SFACE_BLOCKS: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
)
CONV_BN_EPS = 1e-3
HEAD_BN_EPS = 2e-5
# The graph computes (x − 127.5)/128; the trainer feeds (x − 127.5)/127.5.
INPUT_SCALE = 127.5 / 128.0


def _conv_bn_prelu(cin: int, cout: int, kernel: int, stride: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=CONV_BN_EPS),
        nn.PReLU(cout),
    )


class SFace(nn.Module):
    """SFace for 112×112 RGB crops in [−1, 1] → un-normalised embeddings (128-d as published)."""

    def __init__(self, embedding_size: int = 128, dropout: float = 0.0):
        super().__init__()
        self.embedding_size = embedding_size
        layers = [_conv_bn_prelu(3, 32, 3, 1, 1)]
        channels = 32
        for stride, out in SFACE_BLOCKS:
            layers.append(_conv_bn_prelu(channels, channels, 3, stride, channels))
            layers.append(_conv_bn_prelu(channels, out, 1, 1, 1))
            channels = out
        self.body = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(channels, eps=HEAD_BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels * 7 * 7, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=HEAD_BN_EPS)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.body(x * INPUT_SCALE))
        return self.features(self.fc(self.dropout(torch.flatten(x, 1))))


@register_backbone("sface")
def sface(embedding_size: int = 128, dropout: float = 0.0, **kwargs) -> SFace:
    """OpenCV zoo's SFace layout (load the published weights with ``training.onnx_import``)."""
    return SFace(embedding_size=embedding_size, dropout=dropout, **kwargs)

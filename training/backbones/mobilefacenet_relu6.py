"""MobileFaceNet as many public ONNX exports have it (e.g. ``mobilefacenet_pixamatch.onnx``): the paper's
bottlenecks (training.backbones.mobilefacenet.BOTTLENECK_SETTINGS) with ReLU6 instead of PReLU, a
depthwise-separable stem block (depthwise 3×3 + pointwise 1×1, ReLU), no PReLU anywhere, and BatchNorm after
every convolution (folded into the convolutions of such exports; ``training.onnx_import`` unfolds them).
"""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.mobilefacenet import BOTTLENECK_SETTINGS
from training.backbones.registry import register_backbone


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = "relu6"):
    padding = kernel // 2 if kernel < 7 else 0
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act == "relu6":
        layers.append(nn.ReLU6())
    elif act == "relu":
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            _conv_bn(cin, hidden, 1),
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            _conv_bn(hidden, cout, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileFaceNetReLU6(nn.Module):
    def __init__(self, embedding_size: int = 128, dropout: float = 0.0):
        super().__init__()
        self.embedding_size = embedding_size
        self.conv1 = _conv_bn(3, 64, 3, 2)
        self.dw_conv = nn.Sequential(
            _conv_bn(64, 64, 3, groups=64, act="relu"), _conv_bn(64, 64, 1, act="relu")
        )
        blocks, cin = [], 64
        for expansion, channels, repeats, stride in BOTTLENECK_SETTINGS:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, channels, stride if i == 0 else 1, expansion))
                cin = channels
        self.features = nn.Sequential(*blocks)
        self.conv2 = _conv_bn(cin, 512, 1)
        self.gdconv = _conv_bn(512, 512, 7, groups=512, act=None)
        self.dropout = nn.Dropout(dropout)
        self.conv3 = nn.Conv2d(512, embedding_size, 1, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gdconv(self.conv2(self.features(self.dw_conv(self.conv1(x)))))
        return self.bn(torch.flatten(self.conv3(self.dropout(x)), 1))


@register_backbone("mobilefacenet_relu6")
def mobilefacenet_relu6(embedding_size: int = 128, dropout: float = 0.0, **kwargs) -> MobileFaceNetReLU6:
    """MobileFaceNet with ReLU6 and a separable stem (the layout of common public ONNX exports)."""
    return MobileFaceNetReLU6(embedding_size=embedding_size, dropout=dropout, **kwargs)

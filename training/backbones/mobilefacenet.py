"""MobileFaceNet (Chen et al. 2018, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices"), the ≈1M-parameter design of the paper's Table 1.

112×112×3 → conv3×3 s2 (64) → depthwise conv3×3 (64) → bottlenecks → conv1×1 (512) → linear GDConv 7×7
→ linear conv1×1 (embedding) → BN. Non-linearities are PReLU, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.registry import register_backbone

# (expansion t, output channels c, repeats n, first stride s) — the paper's Table 1.
BOTTLENECK_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


class ConvBNPReLU(nn.Sequential):
    """Convolution → BN, followed by PReLU unless ``linear``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        linear: bool = False,
        padding: int | None = None,
    ):
        padding = kernel_size // 2 if padding is None else padding
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if not linear:
            layers.append(nn.PReLU(out_channels))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: expand 1×1 → depthwise 3×3 (stride) → linear 1×1; residual if shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.block = nn.Sequential(
            ConvBNPReLU(in_channels, hidden, 1),
            ConvBNPReLU(hidden, hidden, 3, stride=stride, groups=hidden),
            ConvBNPReLU(hidden, out_channels, 1, linear=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileFaceNet(nn.Module):
    """MobileFaceNet for 112×112 crops; ``embedding_size`` 128 is the paper's, 512 is common too."""

    def __init__(self, embedding_size: int = 128, dropout: float = 0.0):
        super().__init__()
        self.embedding_size = embedding_size
        layers: list[nn.Module] = [
            ConvBNPReLU(3, 64, 3, stride=2),
            ConvBNPReLU(64, 64, 3, groups=64),
        ]
        in_channels = 64
        for expansion, channels, repeats, stride in BOTTLENECK_SETTINGS:
            for i in range(repeats):
                layers.append(Bottleneck(in_channels, channels, stride if i == 0 else 1, expansion))
                in_channels = channels
        layers.append(ConvBNPReLU(in_channels, 512, 1))
        self.body = nn.Sequential(*layers)
        # global depthwise conv: 7×7 → 1×1, one weight per spatial position and channel
        self.gdconv = ConvBNPReLU(512, 512, 7, groups=512, linear=True, padding=0)
        self.dropout = nn.Dropout(p=dropout)
        self.linear = nn.Conv2d(512, embedding_size, 1, bias=False)
        self.features = nn.BatchNorm1d(embedding_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gdconv(self.body(x))
        x = self.linear(self.dropout(x))
        return self.features(torch.flatten(x, 1))


@register_backbone("mobilefacenet")
def mobilefacenet(embedding_size: int = 128, dropout: float = 0.0, **kwargs) -> MobileFaceNet:
    """The paper's MobileFaceNet. Note: ``build_backbone`` passes its default ``embedding_size=512``."""
    return MobileFaceNet(embedding_size=embedding_size, dropout=dropout, **kwargs)

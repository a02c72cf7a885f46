"""IResNet-18/34/50/100 with insightface's arcface_torch layout.

Attribute names follow insightface (``conv1``, ``layer1.0.bn1``, ``fc``, ``features`` …) so that its
published ``backbone.pth`` checkpoints load with ``load_state_dict`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from training.backbones.registry import register_backbone

_STAGE_CHANNELS = (64, 128, 256, 512)
_FEATURE_MAP = 7  # 112 / 2**4: every stage's first block has stride 2
_BN_EPS = 1e-5


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus the (projected) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=_BN_EPS)
        self.conv1 = _conv3x3(in_channels, channels)
        self.bn2 = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.prelu = nn.PReLU(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn3 = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + shortcut


class IResNet(nn.Module):
    """Improved ResNet for 112×112 face crops → L2-unnormalised embeddings of ``embedding_size``."""

    def __init__(
        self,
        blocks_per_stage: tuple[int, int, int, int],
        embedding_size: int = 512,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if len(blocks_per_stage) != len(_STAGE_CHANNELS):
            raise ValueError(f"IResNet needs 4 stage depths, got {blocks_per_stage}")
        self.embedding_size = embedding_size
        self.conv1 = _conv3x3(3, 64)
        self.bn1 = nn.BatchNorm2d(64, eps=_BN_EPS)
        self.prelu = nn.PReLU(64)
        in_channels = 64
        stages = zip(_STAGE_CHANNELS, blocks_per_stage, strict=True)
        for stage, (channels, blocks) in enumerate(stages, start=1):
            setattr(self, f"layer{stage}", self._make_stage(in_channels, channels, blocks))
            in_channels = channels
        self.bn2 = nn.BatchNorm2d(in_channels, eps=_BN_EPS)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(in_channels * _FEATURE_MAP * _FEATURE_MAP, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=_BN_EPS)
        self._init_weights(zero_init_residual)

    @staticmethod
    def _make_stage(in_channels: int, channels: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(channels, eps=_BN_EPS),
        )
        layers = [IBasicBlock(in_channels, channels, stride=2, downsample=downsample)]
        layers += [IBasicBlock(channels, channels) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.1)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, IBasicBlock):
                    nn.init.zeros_(module.bn3.weight)
        # insightface keeps the embedding BN's scale at 1: only its shift is learned.
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


_DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _make_factory(blocks: tuple[int, int, int, int]):
    def factory(embedding_size: int = 512, dropout: float = 0.0, **kwargs) -> IResNet:
        return IResNet(blocks, embedding_size=embedding_size, dropout=dropout, **kwargs)

    return factory


for _name, _blocks in _DEPTHS.items():
    register_backbone(_name)(_make_factory(_blocks))

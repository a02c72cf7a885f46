"""Face-embedding backbones: ``build_backbone(name, embedding_size, dropout)`` and ``list_backbones()``."""

from training.backbones import (  # noqa: F401  (registers the backbones)
    iresnet,
    mobilefacenet,
    mobilefacenet_relu6,
    sface,
)
from training.backbones.iresnet import IResNet
from training.backbones.mobilefacenet import MobileFaceNet
from training.backbones.registry import (
    UnknownBackboneError,
    build_backbone,
    list_backbones,
    register_backbone,
)
from training.backbones.sface import SFace

__all__ = [
    "IResNet",
    "MobileFaceNet",
    "SFace",
    "UnknownBackboneError",
    "build_backbone",
    "list_backbones",
    "register_backbone",
]

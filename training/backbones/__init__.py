"""Face-embedding backbones: ``build_backbone(name, embedding_size, dropout)`` and ``list_backbones()``."""

from training.backbones import iresnet, mobilefacenet, sface  # noqa: F401  (registers the backbones)
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

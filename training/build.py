"""Build what a config names: backbone, classification head (loss or Partial FC), dataset, optimiser."""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from training.config import ConfigError, TrainConfig

# Partial FC heads up to this many weights are initialised whole and sliced (world-size independent).
FULL_INIT_LIMIT = 64 * 1024 * 1024


def build_backbone_from_config(cfg: TrainConfig | dict[str, Any], *, trust_code: bool = False) -> nn.Module:
    """``backbone`` is a registry name (training.backbones) or ``package.module:factory``; the factory
    takes ``embedding_size`` and ``dropout`` keywords.

    A dict config comes from a checkpoint, a file from anywhere: the code it names is imported only with
    ``trust_code`` (``--trust-code`` on the command line). A ``TrainConfig`` is the user's own config.
    """
    if isinstance(cfg, dict):
        name, size, dropout = cfg["backbone"], int(cfg.get("embedding_size", 512)), cfg.get("dropout", 0.0)
        trusted = trust_code
    else:
        name, size, dropout = cfg.backbone, cfg.embedding_size, cfg.dropout
        trusted = True
    if ":" in str(name) and not trusted:
        raise ConfigError(
            f"the checkpoint's config names code to import and run (backbone {name!r}); "
            "pass --trust-code if you trust where the checkpoint came from",
            code="untrusted_code",
        )
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"backbone {name!r}: cannot import factory ({exc})") from exc
        return factory(embedding_size=size, dropout=dropout)
    from training.backbones import build_backbone

    try:
        return build_backbone(name, embedding_size=size, dropout=dropout)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"backbone {name!r}: {exc}") from exc


def build_head(
    cfg: TrainConfig, num_classes: int, process_group: Any = None, distributed: bool = False
) -> nn.Module:
    """The classification loss module: ``head(embeddings, labels) -> scalar loss``.

    Without Partial FC the head is replicated on every process (and wrapped in DDP with the backbone);
    with Partial FC the class centres are sharded across processes by ``training.partial_fc``.
    """
    loss_cfg = dict(cfg.loss)
    name = loss_cfg.pop("name")
    try:
        if cfg.partial_fc.enabled:
            from training.losses import build_loss
            from training.partial_fc import PartialFC

            group = process_group if distributed else None
            pfc = {
                "sample_rate": cfg.partial_fc.sample_rate,
                "process_group": group,
                "scale_embedding_grad": distributed,
            }  # DDP averages the backbone's gradients
            if num_classes * cfg.embedding_size <= FULL_INIT_LIMIT:
                # initialise the full matrix and slice it: the same centres for any number of processes
                full = build_loss(name, cfg.embedding_size, num_classes, **loss_cfg)
                return PartialFC(full, cfg.embedding_size, num_classes, **pfc)
            return PartialFC(name, cfg.embedding_size, num_classes, **pfc, **loss_cfg)
        from training.losses import build_loss_from_config

        return build_loss_from_config(dict(cfg.loss), cfg.embedding_size, num_classes)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"loss {cfg.loss}: {exc}") from exc


class FaceModel(nn.Module):
    """Backbone + head; ``forward(images, labels)`` returns the loss. The backbone runs under autocast
    when asked; the head always gets float32 embeddings (angles in float32)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.autocast_dtype = autocast_dtype

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(images.device.type, dtype=self.autocast_dtype):
                embeddings = self.backbone(images)
        else:
            embeddings = self.backbone(images)
        return self.head(embeddings.float(), labels)


def build_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    opt = cfg.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    return torch.optim.AdamW(params, lr=opt.lr, betas=opt.betas, weight_decay=opt.weight_decay)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """fp16 needs CUDA (with GradScaler); bf16 autocast works on CUDA and CPU; fp32 is no autocast."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU", "bad_precision")
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision bf16 is not supported by this GPU; use fp16", "bad_precision")
    return torch.bfloat16

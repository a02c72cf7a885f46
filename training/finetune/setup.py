"""``FineTuning``: what the trainer does differently when a config has a ``finetune:`` section."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from training.config import ConfigError
from training.finetune.config import FinetuneConfig
from training.finetune.init import load_initial_weights
from training.finetune.model import FineTuneModel

log = logging.getLogger("marginface.training")


@torch.no_grad()
def class_means(
    backbone: nn.Module,
    dataset: Any,
    num_classes: int,
    device: torch.device,
    batch_size: int = 64,
    max_batches: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit mean embedding per class [C, D], images seen per class [C]) with the backbone in eval mode."""
    was_training = backbone.training
    backbone.eval()
    sums: torch.Tensor | None = None
    counts = torch.zeros(num_classes)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    for i, (images, labels) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        unit = F.normalize(backbone(images.to(device)).float(), dim=1).cpu()
        if sums is None:
            sums = torch.zeros(num_classes, unit.shape[1])
        sums.index_add_(0, labels, unit)
        counts.index_add_(0, labels, torch.ones(len(labels)))
    backbone.train(was_training)
    assert sums is not None, "empty dataset"
    return F.normalize(sums, dim=1), counts


def _centre_cache_path(
    backbone: nn.Module, dataset: Any, num_classes: int, max_batches: int | None
) -> Path | None:
    """Where the class means of this (initial weights, data) pair are kept, or None when the dataset
    cannot be fingerprinted. Every run of a sweep starts from the same model on the same crops: the pass
    over the data (minutes on a CPU) is made once. Key: the weights' bytes and every sample's path, size,
    modification time and label."""
    samples = getattr(dataset, "samples", None)
    if not samples:
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    files = []
    for path, label in samples:
        stat = Path(path).stat()
        files.append([str(path), stat.st_size, stat.st_mtime_ns, int(label)])
    digest.update(json.dumps([files, num_classes, max_batches]).encode())
    home = Path(os.environ.get("MARGINFACE_HOME", Path.home() / ".marginface")).expanduser()
    return home / "cache" / "centres" / f"{digest.hexdigest()[:32]}.pt"


def cached_class_means(
    backbone: nn.Module,
    dataset: Any,
    num_classes: int,
    device: torch.device,
    max_batches: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``class_means``, read from / written to the centre cache when the dataset has ``samples``."""
    path = _centre_cache_path(backbone, dataset, num_classes, max_batches)
    if path is not None and path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            log.info("class centres from %s", path)
            return state["means"], state["counts"]
        except Exception as exc:  # a truncated file: recompute
            log.warning("ignoring centre cache %s: %s", path, exc)
    means, counts = class_means(backbone, dataset, num_classes, device, max_batches=max_batches)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"means": means, "counts": counts}, tmp)
        os.replace(tmp, path)
    return means, counts


class FineTuning:
    """Initial weights, centres, frozen layers, backbone warm-up and the compatibility term."""

    def __init__(self, cfg: FinetuneConfig, backbone_name: str) -> None:
        self.cfg, self.backbone_name = cfg, backbone_name
        self.source = ""
        self.initial: dict[str, torch.Tensor] | None = None  # θ_0, kept only for ``interpolate``

    def init_backbone(self, backbone: nn.Module) -> None:
        self.source = load_initial_weights(backbone, self.cfg.init, self.backbone_name)
        log.info("fine-tuning from %s", self.source)
        if self.cfg.interpolate is not None:
            self.initial = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
        frozen = 0
        for name, param in backbone.named_parameters():
            if any(name == p or name.startswith(p.rstrip(".") + ".") for p in self.cfg.freeze):
                param.requires_grad = False
                frozen += 1
        if self.cfg.freeze and not frozen:
            raise ConfigError(
                f"finetune.freeze {self.cfg.freeze} matches no backbone parameter", "bad_config"
            )

    def init_centres(self, backbone: nn.Module, head: nn.Module, dataset: Any, device: torch.device) -> bool:
        """Set the head's class centres to the initial model's mean embeddings; False when it has none."""
        if self.cfg.centres != "mean_embedding":
            return False
        weight = getattr(head, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            return False
        means, counts = cached_class_means(
            backbone, dataset, weight.shape[0], device, max_batches=self.cfg.centre_batches
        )
        seen = counts > 0
        if weight.shape != means.shape:
            raise ConfigError(f"class centres {tuple(weight.shape)} ≠ mean embeddings {tuple(means.shape)}")
        with torch.no_grad():
            weight[seen.to(weight.device)] = means[seen].to(weight.device, weight.dtype)
        return True

    def write_interpolated(self, state: dict[str, Any], out_dir: Path) -> Path | None:
        """With ``interpolate: α``, ``OUT/interpolated.pt``: the final checkpoint ``state`` with its backbone
        replaced by α·θ_fine-tuned + (1 − α)·θ_initial (WiSE-FT); None without it."""
        if self.cfg.interpolate is None or self.initial is None:
            return None
        from training.finetune.interpolate import INTERPOLATED_FILE, write_interpolated

        alpha = self.cfg.interpolate
        source = f"step {state['step']}"
        path = write_interpolated(state, self.initial, alpha, source, out_dir / INTERPOLATED_FILE)
        log.info("WiSE-FT α %.2f: %s", alpha, path)
        return path

    def param_groups(self, backbone: nn.Module, head: nn.Module) -> list[dict[str, Any]]:
        """Head first, backbone second (the scheduler's second lambda warms the backbone up)."""
        return [
            {"params": [p for p in head.parameters() if p.requires_grad]},
            {"params": [p for p in backbone.parameters() if p.requires_grad]},
        ]

    def backbone_factor(self, step: int) -> float:
        """Backbone lr multiplier before optimiser step ``step``: 0 while frozen, then a linear ramp."""
        cfg = self.cfg
        if step < cfg.backbone_frozen_steps:
            return 0.0
        ramp = step - cfg.backbone_frozen_steps
        warm = min(1.0, (ramp + 1) / cfg.backbone_warmup_steps) if cfg.backbone_warmup_steps else 1.0
        return cfg.backbone_lr_scale * warm

    def scheduler(
        self, optimizer: torch.optim.Optimizer, factor: Callable[[int], float]
    ) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, [factor, lambda step: factor(step) * self.backbone_factor(step)]
        )

    def model(
        self, backbone: nn.Module, head: nn.Module, autocast_dtype: torch.dtype | None
    ) -> FineTuneModel:
        """The trained module; a compatibility term gets a frozen copy of the initial backbone / centres."""
        old_backbone = old_head = None
        compat = self.cfg.compat
        if compat is not None and compat.kind == "cosine":
            old_backbone = copy.deepcopy(backbone).eval().requires_grad_(False)
        if compat is not None and compat.kind == "bct":
            if getattr(head, "weight", None) is None:
                raise ConfigError("finetune.compat bct needs a loss with class centres", "bad_config")
            old_head = copy.deepcopy(head).requires_grad_(False)
        return FineTuneModel(
            backbone,
            head,
            compat=compat,
            old_backbone=old_backbone,
            old_head=old_head,
            frozen_bn=self.cfg.frozen_bn,
            autocast_dtype=autocast_dtype,
        )

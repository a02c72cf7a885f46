"""Embed aligned 112×112 crops with a backbone from a training checkpoint (flip-summed, L2-normalised)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.errors import InvalidImageError


def load_backbone(
    checkpoint: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the backbone a checkpoint's config names, load its weights, and put it in eval mode."""
    from training.build import build_backbone_from_config
    from training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    backbone = build_backbone_from_config(state["config"])
    backbone.load_state_dict(state["backbone"])
    return backbone.to(device).eval(), state["config"]


def crops_to_tensor(crops_bgr: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """N BGR uint8 112×112×3 crops → N×3×112×112 float32 RGB in [−1, 1] (the training normalisation)."""
    batch = crops_bgr if isinstance(crops_bgr, np.ndarray) else np.stack(list(crops_bgr))
    if batch.ndim != 4 or batch.shape[1:] != (112, 112, 3):
        raise InvalidImageError(f"expected N×112×112×3 aligned crops, got {batch.shape}", "bad_image")
    rgb = batch[..., ::-1].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).sub_(127.5).div_(127.5)


@torch.inference_mode()
def embed_crops(
    backbone: nn.Module, crops_bgr: Sequence[np.ndarray] | np.ndarray, flip: bool = True,
    batch_size: int = 128, device: str | torch.device = "cpu", progress: bool = False,
) -> np.ndarray:
    """N×D float32 unit-norm embeddings; with ``flip`` the crop and its mirror are summed, then normalised."""
    was_training = backbone.training
    backbone.eval()
    device = torch.device(device)
    out = []
    starts = range(0, len(crops_bgr), batch_size)
    for start in tqdm(starts, disable=not progress, unit="batch", desc="embedding"):
        x = crops_to_tensor(crops_bgr[start : start + batch_size]).to(device)
        emb = backbone(x).float()
        if flip:
            emb = emb + backbone(x.flip(-1)).float()
        out.append(torch.nn.functional.normalize(emb, dim=1).cpu().numpy())
    backbone.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)

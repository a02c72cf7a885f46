"""Untrained checkpoints in the trainer's format, for speed benchmarks and export tests.

A freshly initialised iresnet (conv weights ~ N(0, 0.1)) blows activations up to ~1e20 in eval mode.
``settle_batchnorm`` runs a few forward passes in train mode so the BatchNorm running statistics match
real activations: the network stays untrained but numerically sane, like a trained one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.export.parity import to_input


def settle_batchnorm(model: Any, crops_bgr: np.ndarray, passes: int = 2) -> Any:
    """Recompute BatchNorm running statistics as a cumulative average over ``crops_bgr``."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative moving average
    data = torch.from_numpy(to_input(crops_bgr))
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(data)
    return model.eval()


def random_checkpoint(
    path: str | Path, backbone: str, crops_bgr: np.ndarray, embedding_size: int = 512, seed: int = 0
) -> Path:
    """Write an untrained ``backbone`` checkpoint (trainer key layout) with settled BatchNorm statistics."""
    import torch

    from training.build import build_backbone_from_config

    torch.manual_seed(seed)
    config = {"backbone": backbone, "embedding_size": embedding_size, "dropout": 0.0}
    model = build_backbone_from_config(config, trust_code=True)  # the caller's own backbone name
    # Small batches are enough; augment with flips so BatchNorm1d sees more than a handful of rows.
    crops = np.concatenate([crops_bgr, crops_bgr[:, :, ::-1]])
    settle_batchnorm(model, crops)
    state = {
        "backbone": model.state_dict(),
        "config": {
            "backbone": backbone,
            "embedding_size": embedding_size,
            "loss": {"name": "untrained"},
            "data": {"name": "none (random initialisation, BatchNorm statistics settled on sample faces)"},
        },
        "step": 0,
        "epoch": 0,
        "eval": {},
        "best_metric": None,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path

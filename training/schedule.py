"""Learning-rate schedules as per-step multipliers (``LambdaLR``), stepped once per optimiser step."""

from __future__ import annotations

import bisect
from collections.abc import Callable

import torch

from training.config import ScheduleConfig


def lr_multiplier(cfg: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The factor applied to the base lr before optimiser step ``step`` (0-based).

    ``step``: gamma ** (number of milestones passed), after an optional linear warm-up.
    ``poly``: linear warm-up over ``warmup``, then (1 − (t − w)/(T − w)) ** power (arcface_torch's
    PolyScheduler with power 1 is linear decay to 0).
    """
    per_unit = steps_per_epoch if cfg.unit == "epoch" else 1
    warmup = int(round(cfg.warmup * per_unit))
    milestones = [int(round(m * per_unit)) for m in cfg.milestones]

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.name == "step":
            return cfg.gamma ** bisect.bisect_right(milestones, step)
        if cfg.name == "poly":
            span = max(1, total_steps - warmup)
            return max(0.0, 1.0 - (step - warmup) / span) ** cfg.power
        return 1.0

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(cfg, total_steps, steps_per_epoch))

"""Evaluation during training: the config's ``.bin`` sets, loaded once, evaluated on rank 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from training.config import ConfigError, EvalConfig
from training.evaluation.verification import evaluate_bin, load_bin


class TrainingEvaluator:
    def __init__(self, cfg: EvalConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.sets: dict[str, tuple[list[np.ndarray], np.ndarray]] = {
            s.name: load_bin(s.bin) for s in cfg.sets
        }

    def run(self, backbone: nn.Module) -> dict[str, dict[str, Any]]:
        """{set name: {accuracy, accuracy_std, tar@far…}} (the full protocol report, minus fold lists)."""
        results = {}
        for name, data in self.sets.items():
            report = evaluate_bin(
                backbone,
                name,
                flip=self.cfg.flip,
                batch_size=self.cfg.batch_size,
                device=self.device,
                name=name,
                data=data,
            )
            results[name] = {
                "accuracy": report["accuracy"],
                "accuracy_std": report["accuracy_std"],
                "best_threshold_cosine": report["best_threshold_cosine"],
                **{f"tar@far={far}": v["tar"] for far, v in report["tar_at_far"].items() if v},
            }
        return results

    @staticmethod
    def best_metric_value(results: dict[str, dict[str, Any]], spec: str | None) -> float:
        """The value that decides the best checkpoint: ``'<set>/<metric>'``, default first set's accuracy."""
        if spec is None:
            return float(next(iter(results.values()))["accuracy"])
        set_name, _, metric = spec.partition("/")
        try:
            return float(results[set_name][metric or "accuracy"])
        except KeyError as exc:
            raise ConfigError(f"eval.best_metric {spec!r}: no such set/metric in {list(results)}") from exc

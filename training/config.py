"""Experiment configuration: one YAML (or Python) file per experiment, validated with pydantic.

A Python config defines a module-level ``CONFIG`` dict. ``--set key.sub=value`` overrides are applied to
the raw dict before validation, values parsed as YAML scalars (``--set optimizer.lr=0.05``).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.errors import MarginFaceError
from training.finetune.config import FinetuneConfig


class ConfigError(MarginFaceError):
    """A training config that cannot be used (``bad_config``, ``config_not_found``)."""

    code = "bad_config"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Training data: a folder of identities (``root/<identity>/*.jpg``) or an insightface RecordIO pair."""

    kind: Literal["folder", "recordio"] = "folder"
    root: str | None = None
    rec: str | None = None
    idx: str | None = None
    num_classes: int | None = Field(default=None, gt=1, description="inferred from the data when absent")
    workers: int = Field(default=2, ge=0)
    flip: bool = True

    @model_validator(mode="after")
    def _paths(self) -> DataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError("data.kind 'folder' needs data.root (a folder of identity sub-folders)")
        if self.kind == "recordio":
            if not self.rec and self.root:
                self.rec, self.idx = f"{self.root}/train.rec", f"{self.root}/train.idx"
            if not self.rec:
                raise ValueError("data.kind 'recordio' needs data.rec (and data.idx) or data.root")
            if not self.idx:
                self.idx = str(Path(self.rec).with_suffix(".idx"))
        return self


class OptimizerConfig(_Strict):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class ScheduleConfig(_Strict):
    """``step``: lr × gamma at each milestone (X2-Softmax recipe); ``poly``: (1 − t/T)^power after a linear
    warm-up (arcface_torch); ``constant``. Milestones and warm-up count in ``unit`` (steps or epochs)."""

    name: Literal["step", "poly", "constant"] = "poly"
    unit: Literal["step", "epoch"] = "epoch"
    milestones: list[float] = Field(default_factory=list)
    gamma: float = Field(default=0.1, gt=0)
    power: float = Field(default=1.0, gt=0)
    warmup: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _sorted(self) -> ScheduleConfig:
        if self.milestones != sorted(self.milestones):
            raise ValueError(f"schedule.milestones must be increasing, got {self.milestones}")
        return self


class PartialFCConfig(_Strict):
    enabled: bool = False
    sample_rate: float = Field(default=1.0, gt=0, le=1)


class EvalSetConfig(_Strict):
    """A verification set: an insightface-style ``.bin`` (aligned 112×112 pairs)."""

    name: str
    bin: str


class EvalConfig(_Strict):
    sets: list[EvalSetConfig] = Field(default_factory=list)
    every_steps: int = Field(default=2000, gt=0)
    flip: bool = True
    batch_size: int = Field(default=128, gt=0)
    best_metric: str | None = Field(default=None, description="'<set>/accuracy'; default: first set")


class CheckpointConfig(_Strict):
    every_steps: int = Field(default=1000, gt=0)
    keep_last: int = Field(default=3, ge=1)


class TrainConfig(_Strict):
    """The full experiment. ``batch_size`` is per process (global batch = batch_size × world size)."""

    name: str = "experiment"
    seed: int = 0
    backbone: str = Field(description="registry name (iresnet50, mobilefacenet…) or 'package.module:factory'")
    embedding_size: int = Field(default=512, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    loss: dict[str, Any] = Field(description="{name: arcface, s: 64, m: 0.5, …} as training.losses takes it")
    partial_fc: PartialFCConfig = Field(default_factory=PartialFCConfig)
    data: DataConfig
    batch_size: int = Field(default=128, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    epochs: int | None = Field(default=None, gt=0)
    steps: int | None = Field(default=None, gt=0, description="total optimiser steps; overrides epochs")
    max_minutes: float | None = Field(default=None, gt=0, description="stop (and checkpoint) after this time")
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    grad_clip: float | None = Field(default=None, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = False
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    log_every: int = Field(default=20, gt=0)
    finetune: FinetuneConfig | None = Field(default=None, description="start from a real model (issue 13)")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if "name" not in self.loss:
            raise ValueError("loss needs a 'name' (e.g. {name: arcface, s: 64, m: 0.5})")
        if self.epochs is None and self.steps is None:
            raise ValueError("set 'epochs' or 'steps'")
        names = [s.name for s in self.eval.sets]
        if len(set(names)) != len(names):
            raise ValueError(f"eval set names must be unique, got {names}")
        return self


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML or Python config, apply ``key.sub=value`` overrides and validate it."""
    raw = read_raw_config(path)
    return validate_config(apply_overrides(raw, overrides or []), source=str(path))


def read_raw_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", code="config_not_found")
    if path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"_marginface_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        raw = getattr(module, "CONFIG", None)
    else:
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping (a Python config defines CONFIG = {{...}})")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` set (value parsed as a YAML scalar)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a mapping")
        node[parts[-1]] = yaml.safe_load(text)
    return out


def validate_config(raw: dict[str, Any], source: str = "config") -> TrainConfig:
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: invalid training config:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None

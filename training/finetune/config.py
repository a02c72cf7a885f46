"""The ``finetune:`` section of a training config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CompatConfig(BaseModel):
    """Backward-compatible training: new embeddings stay comparable with the initial model's.

    ``cosine``: weight · mean(1 − cos(f_new(x), f_old(x))) with the frozen initial backbone.
    ``bct``: weight · the classification loss of the new embeddings against the frozen initial class
    centres (Shen et al. 2020, "Towards Backward-Compatible Representation Learning"), which are the old
    model's mean embeddings here.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["cosine", "bct"] = "cosine"
    weight: float = Field(default=1.0, gt=0)


class FinetuneConfig(BaseModel):
    """Start from a real model instead of random weights."""

    model_config = ConfigDict(extra="forbid")
    init: str = Field(
        description="'pack:NAME' (an installed pack's recogniser), a .onnx file, or a checkpoint (.pt/folder)"
    )
    centres: Literal["mean_embedding", "random"] = Field(
        default="mean_embedding",
        description="class centres from the initial model's mean embedding per class",
    )
    freeze: list[str] = Field(
        default_factory=list, description="backbone parameter-name prefixes kept frozen (e.g. 'body.0')"
    )
    frozen_bn: bool = Field(default=True, description="keep BatchNorm statistics of the initial model")
    backbone_frozen_steps: int = Field(
        default=0, ge=0, description="head-only steps before the backbone learns"
    )
    backbone_warmup_steps: int = Field(default=0, ge=0, description="then ramp the backbone lr linearly")
    backbone_lr_scale: float = Field(default=1.0, gt=0, description="backbone lr = this × the head's lr")
    compat: CompatConfig | None = None
    interpolate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="WiSE-FT: at the end also write OUT/interpolated.pt = α·fine-tuned + (1 − α)·initial",
    )
    centre_batches: int | None = Field(
        default=None, gt=0, description="limit the centre pass (None: all data)"
    )

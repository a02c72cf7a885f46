"""Weight-space ensembling of a fine-tuned model with its initial weights (WiSE-FT).

Wortsman et al. 2022, "Robust fine-tuning of zero-shot models": θ = α·θ_fine-tuned + (1 − α)·θ_initial
often keeps most of what fine-tuning gained on the new data while giving back the initial model's
robustness elsewhere. Both models share the initialisation, so their weights lie in one basin and the
line between them stays a good model. Every floating tensor of the backbone is interpolated, BatchNorm
running statistics included; integer buffers (``num_batches_tracked``) come from the fine-tuned model.

    python -m training.finetune.interpolate runs/x/checkpoint_last.pt --alpha 0.5 --out runs/x/wise_a0.50.pt
    marginface export runs/x/wise_a0.50.pt --out PACK ...      # the result is an ordinary checkpoint

A config's ``finetune.interpolate: α`` makes the trainer write ``OUT/interpolated.pt`` at the end of training
(the step checkpoints keep the fine-tuned weights, so the run stays resumable).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from training.config import ConfigError

INTERPOLATED_FILE = "interpolated.pt"


def interpolate_state(
    initial: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """α·finetuned + (1 − α)·initial for floating tensors; other tensors from ``finetuned``."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"interpolation weight α must be in [0, 1], got {alpha}", "bad_config")
    if initial.keys() != finetuned.keys():
        missing = sorted(set(initial) ^ set(finetuned))[:5]
        raise ConfigError(f"initial and fine-tuned weights differ in their tensors: {missing}", "bad_init")
    out = {}
    for name, tuned in finetuned.items():
        start = initial[name]
        if start.shape != tuned.shape:
            raise ConfigError(f"{name}: shape {tuple(start.shape)} ≠ {tuple(tuned.shape)}", "bad_init")
        if tuned.is_floating_point():
            # lerp is exact at both ends: α 0 gives the initial tensor, α 1 the fine-tuned one
            out[name] = torch.lerp(start.to(tuned.device, tuned.dtype), tuned, alpha).detach()
        else:
            out[name] = tuned.detach().clone()
    return out


def initial_state(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone weights a fine-tuning run started from (its config's ``finetune.init``)."""
    from training.build import build_backbone_from_config
    from training.finetune.init import load_initial_weights

    finetune = config.get("finetune") or {}
    if not finetune.get("init"):
        raise ConfigError("the checkpoint's config has no finetune.init: nothing to interpolate", "bad_init")
    backbone = build_backbone_from_config(config)
    load_initial_weights(backbone, finetune["init"], config["backbone"])
    return {k: v.detach().clone() for k, v in backbone.state_dict().items()}


def write_interpolated(
    state: dict[str, Any], initial: dict[str, torch.Tensor], alpha: float, source: str, out: str | Path
) -> Path:
    """Write checkpoint ``state`` with its backbone replaced by α·(its backbone) + (1 − α)·``initial``."""
    from training.checkpoint import atomic_save

    state = {**state, "backbone": interpolate_state(initial, state["backbone"], alpha)}
    init = state["config"]["finetune"]["init"]
    state["interpolation"] = {"alpha": float(alpha), "init": init, "from": source}
    out = Path(out)
    atomic_save(state, out)
    return out


def interpolate_checkpoint(checkpoint: str | Path, alpha: float, out: str | Path) -> Path:
    """Write a checkpoint whose backbone is α·(the fine-tuned one) + (1 − α)·(its initial weights)."""
    from training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    return write_interpolated(state, initial_state(state["config"]), alpha, str(checkpoint), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.finetune.interpolate",
        description="WiSE-FT: interpolate a fine-tuned checkpoint with its initial weights.",
    )
    parser.add_argument("checkpoint", help="fine-tuned checkpoint (.pt or training folder)")
    parser.add_argument("--alpha", type=float, required=True, help="weight of the fine-tuned model, 0..1")
    parser.add_argument("--out", required=True, help="output checkpoint (.pt)")
    args = parser.parse_args(argv)
    path = interpolate_checkpoint(args.checkpoint, args.alpha, args.out)
    print(f"wrote {path} (α {args.alpha})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

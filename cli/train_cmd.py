"""``marginface train CONFIG``: train a face-embedding network (one process, or one per GPU via torchrun)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a backbone with a margin loss from a config file",
        description="Train from a YAML/Python config (configs/*.yaml). Multi-GPU / multi-machine: "
        "torchrun --nproc_per_node=N -m cli.main train CONFIG (or -m training.train CONFIG).",
    )
    p.add_argument("config", help="experiment config (YAML or .py with CONFIG = {...})")
    p.add_argument("--out", help="output folder (default: runs/<config name>)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CKPT",
                   help="continue from CKPT, or from OUT/checkpoint_last.pt when no path is given")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optimizer.lr=0.05 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from training.checkpoint import CheckpointError
    from training.config import load_config
    from training.distributed import cleanup, init_distributed
    from training.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    out = Path(args.out or f"runs/{cfg.name}")
    resume = None
    if args.resume is not None:
        resume = Path(args.resume) if args.resume else out / "checkpoint_last.pt"
        if not resume.exists():
            raise CheckpointError(f"nothing to resume: {resume} does not exist", "checkpoint_not_found")
    info = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, out, resume=resume, progress=not args.no_progress, dist_info=info)
        if info.is_main:
            print(f"training {cfg.name}: {trainer.num_classes} classes, {len(trainer.dataset)} images, "
                  f"{trainer.total_steps} steps ({trainer.steps_per_epoch}/epoch), world size "
                  f"{info.world_size}, device {info.device}, out {out}"
                  + ("" if trainer.log.tensorboard else " (metrics.csv; TensorBoard not installed)"))
        summary = trainer.fit()
        if info.is_main:
            print(json.dumps(summary, indent=2, default=str))
    finally:
        cleanup(info)
    return 0

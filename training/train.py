"""``python -m training.train CONFIG [--out DIR] [--resume [CKPT]] [--set k=v ...]``: the entry point
for ``torchrun`` (``torchrun --nproc_per_node=8 -m training.train configs/ms1mv3_r50.yaml``).

It builds its own parser from ``add_train_arguments`` (shared with ``marginface train``) so the training
package never imports the command-line package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``marginface train`` and ``python -m training.train``."""
    p.add_argument("config", help="experiment config (YAML or .py with CONFIG = {...})")
    p.add_argument("--out", help="output folder (default: runs/<config name>)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CKPT",
                   help="continue from CKPT, or from OUT/checkpoint_last.pt when no path is given")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optimizer.lr=0.05 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    """Train as ``args`` say (one process, or this rank of a torchrun job)."""
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


def main(argv: list[str] | None = None) -> int:
    from models.errors import MarginFaceError

    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except MarginFaceError as exc:
        print(f"marginface: error [{exc.code}]: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("marginface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

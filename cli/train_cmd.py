"""``marginface train CONFIG``: train a face-embedding network (one process, or one per GPU via torchrun)."""

from __future__ import annotations

import argparse

from training.train import add_train_arguments, run_train


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a backbone with a margin loss from a config file",
        description="Train from a YAML/Python config (configs/*.yaml). Multi-GPU / multi-machine: "
        "torchrun --nproc_per_node=N -m cli.main train CONFIG (or -m training.train CONFIG).",
    )
    add_train_arguments(p)
    p.set_defaults(func=run_train)

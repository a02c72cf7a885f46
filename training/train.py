"""``python -m training.train CONFIG [--out DIR] [--resume [CKPT]] [--set k=v ...]``: the entry point
for ``torchrun`` (``torchrun --nproc_per_node=8 -m training.train configs/ms1mv3_r50.yaml``)."""

from __future__ import annotations

import sys

from cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))

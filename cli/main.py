"""The ``marginface`` command: one sub-command module per concern, imported lazily."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes ``register(subparsers)`` and sets ``func`` on its parsers. Heavy imports
# (torch, onnxruntime, the server) stay inside the command functions so ``--help`` is instant.
COMMAND_MODULES = [
    "cli.models_cmd",
    "cli.inference_cmd",
    "cli.eval_cmd",
    "cli.eval_train_cmd",
    "cli.calibrate_cmd",  # issue 11
    "cli.server_cmd",
    "cli.losses_cmd",
    "cli.data_cmd",
    "cli.train_cmd",
    "cli.export_cmd",
    "cli.doctor_cmd",
    "cli.monitors_cmd",  # issue 15
    "cli.galleries_cmd",  # issue 13
    "cli.ijb_cmd",  # issue 13: eval ijb (after the eval modules)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marginface", description="Face recognition: train, export, serve.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not part of this build
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from models.errors import MarginFaceError

    try:
        return int(args.func(args) or 0)
    except MarginFaceError as exc:
        print(f"marginface: error [{exc.code}]: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # issue 12: the runtime is an extra (`cpu` or `gpu`)
        if exc.name not in ("onnxruntime", "faiss"):
            raise
        print(
            f"marginface: error: {exc.name} is not installed: pip install 'marginface[cpu]' (or "
            "'marginface[gpu]' on an NVIDIA machine); `marginface doctor` checks the set-up",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("marginface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

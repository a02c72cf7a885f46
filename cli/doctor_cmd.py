"""``marginface doctor``: check the runtime, GPU libraries, packs and store; say why and how to fix."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check ONNX Runtime providers, CUDA/cuDNN/TensorRT, FAISS, packs and the store"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--gpu", action="store_true", help="expect a GPU (problems with it are failures)")
    doctor.add_argument("--quick", action="store_true", help="do not verify pack hashes or run the models")
    doctor.add_argument("--no-store", action="store_true", help="do not connect to the store")
    doctor.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when nothing failed, 1 otherwise (warnings do not fail)."""
    from app.doctor import diagnose, render_json, render_text

    findings = diagnose(verify_packs=not args.quick, store=not args.no_store, gpu=True if args.gpu else None)
    print(render_json(findings) if args.json else render_text(findings))
    return 1 if any(f.status == "fail" for f in findings) else 0

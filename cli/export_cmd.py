"""``marginface export``: a training checkpoint → a complete model pack (ONNX, parity, thresholds, card)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _batch_profile(text: str) -> tuple[int, int, int]:
    try:
        low, opt, high = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected MIN,OPT,MAX, e.g. 1,32,128") from exc
    return low, opt, high


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a training checkpoint to a model pack (ONNX, fp16/int8, TensorRT)",
        description="Export CHECKPOINT to ONNX, check it against PyTorch on real aligned faces, evaluate "
        "it, and write a complete pack (recogniser, detector, pack.json, MODEL_CARD.md) to --out. "
        "`marginface models install PACK_DIR` installs the result.",
    )
    parser.add_argument("checkpoint", type=Path, help="trainer checkpoint (.pt) or training output folder")
    parser.add_argument("--out", type=Path, required=True, help="pack folder to write")
    parser.add_argument("--name", help="pack name (default: <backbone>-<checkpoint name>)")
    parser.add_argument("--version", default="1.0.0", help="pack version (default 1.0.0)")
    parser.add_argument("--license", default="same terms as the training data (set with --license)",
                        help="licence text for pack.json")
    parser.add_argument("--detector-from", default="default", metavar="PACK",
                        help="installed pack name or pack folder whose detector is copied (default: default)")
    parser.add_argument("--faces", type=Path, metavar="DIR",
                        help="faces for the parity check (default: insightface's t1.jpg faces + the "
                        "Tom Hanks crop)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="store the recogniser in float16")
    precision.add_argument("--int8-calibration", type=Path, metavar="DIR",
                           help="quantise to INT8 (QDQ, per-channel), calibrated on the faces in DIR")
    parser.add_argument("--int8-min-cosine", type=float, metavar="C",
                        help="parity bar for the INT8 model (default 0.999 per face)")
    evalset = parser.add_mutually_exclusive_group()
    evalset.add_argument("--eval-bin", type=Path, metavar="FILE.bin",
                         help="insightface .bin verification set")
    evalset.add_argument("--eval-pairs", type=Path, metavar="PAIRS.txt", help="LFW-format pairs file")
    parser.add_argument("--eval-images", type=Path, metavar="DIR",
                        help="image folder of --eval-pairs (default: the pairs file's folder)")
    parser.add_argument("--threshold", type=float,
                        help="set the default cosine threshold by hand instead of measuring it")
    parser.add_argument("--tensorrt", action="store_true",
                        help="also build a TensorRT engine (needs the tensorrt package and an NVIDIA GPU)")
    parser.add_argument("--tensorrt-int8", action="store_true", help="INT8 engine from the QDQ model")
    parser.add_argument("--tensorrt-batch", type=_batch_profile, default=(1, 32, 128), metavar="MIN,OPT,MAX",
                        help="TensorRT optimisation profile for the batch axis (default 1,32,128)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                        help="torch.onnx exporter (default: dynamo, legacy TorchScript as fallback)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--trust-code", action="store_true",
                        help="import the pkg.mod:factory backbone the checkpoint names (runs its code)")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from training.export.exporter import ExportOptions, export_pack

    options = ExportOptions(
        checkpoint=args.checkpoint,
        out=args.out,
        name=args.name,
        version=args.version,
        license=args.license,
        detector_from=args.detector_from,
        faces=args.faces,
        fp16=args.fp16,
        int8_calibration=args.int8_calibration,
        int8_min_cosine=args.int8_min_cosine,
        eval_bin=args.eval_bin,
        eval_pairs=args.eval_pairs,
        eval_images=args.eval_images,
        threshold=args.threshold,
        tensorrt=args.tensorrt,
        tensorrt_int8=args.tensorrt_int8,
        tensorrt_batch=args.tensorrt_batch,
        opset=args.opset,
        exporter=args.exporter,
        force=args.force,
        trust_code=args.trust_code,
    )
    summary = export_pack(options)
    brief = {
        "pack": summary["pack"],
        "name": summary["name"],
        "precision": summary["precision"],
        "parity_min_cosine": {p["precision"]: p["min_cosine"] for p in summary["parity"]},
        "thresholds": {k: v["value"] for k, v in summary["thresholds"].items()},
        "accuracy": {k: v["accuracy"] for k, v in summary["evaluation"].get("results", {}).items()},
    }
    print(json.dumps(brief, indent=2))
    print(f"install with: marginface models install {summary['pack']}")
    return 0

"""``marginface eval pairs``: the LFW verification protocol from raw images through the pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.inference_cmd import add_pipeline_options, load_pipeline


def register(subparsers) -> None:
    evaluate = subparsers.add_parser("eval", help="evaluate a model pack")
    commands = evaluate.add_subparsers(dest="eval_command", metavar="EVAL")
    pairs = commands.add_parser(
        "pairs", help="1:1 verification on an LFW-format pairs file (10-fold accuracy)"
    )
    pairs.add_argument(
        "--images", type=Path, required=True, help="image folder: <images>/<Name>/<Name>_NNNN.jpg"
    )
    pairs.add_argument("--pairs", type=Path, required=True, help="pairs.txt (LFW format)")
    pairs.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    pairs.add_argument("--json", type=Path, metavar="OUT", help="also write the result to this file")
    pairs.add_argument("--workers", type=int, default=1, help="images processed concurrently (default 1)")
    pairs.add_argument(
        "--no-face",
        choices=["mean-landmarks", "reject"],
        default="mean-landmarks",
        help="images without a detected face: align with the mean landmarks of same-size images "
        "(default) or score their pairs as non-matches",
    )
    add_pipeline_options(pairs)
    pairs.set_defaults(func=run_pairs)
    evaluate.set_defaults(func=lambda args: evaluate.print_help() or 2)


def run_pairs(args: argparse.Namespace) -> int:
    from models.errors import MarginFaceError
    from models.evaluation import read_pairs
    from models.evaluation.pairs_runner import evaluate_pairs

    if not args.images.is_dir():
        raise MarginFaceError(f"image folder not found: {args.images}", code="not_found")
    pairs = read_pairs(args.pairs, args.images)
    missing = [str(p) for pair in pairs for p in pair[:2] if not Path(p).is_file()]
    if missing:
        raise MarginFaceError(
            f"{len(missing)} image(s) of the pairs file are missing, e.g. {missing[0]}", code="not_found"
        )
    pipeline = load_pipeline(args)
    if getattr(args, "checkpoint", None) is not None:  # eval pairs --checkpoint (cli.eval_train_cmd)
        from cli.eval_train_cmd import apply_checkpoint

        pipeline = apply_checkpoint(pipeline, args)
    n_folds = len({pair[3] for pair in pairs})
    result = evaluate_pairs(
        pipeline, pairs, flip=args.flip, workers=args.workers, no_face=args.no_face, n_folds=n_folds
    )
    data = result.to_dict()
    data.update(
        pack=pipeline.pack_name,
        pack_threshold=pipeline.threshold,
        providers=pipeline.providers,
        pairs_file=str(args.pairs),
        images_dir=str(args.images),
    )
    text = json.dumps(data, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0

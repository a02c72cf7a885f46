"""Evaluation sub-commands for trained checkpoints, added to the ``marginface eval`` group that
``cli.eval_cmd`` creates: ``eval bin`` (.bin verification sets), ``eval ident`` (1:N identification), and
the ``--checkpoint`` option of ``eval pairs``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Attach to the existing ``eval`` parser (or create it when ``cli.eval_cmd`` is not installed)."""
    evaluate = subparsers.choices.get("eval")
    if evaluate is None:
        evaluate = subparsers.add_parser("eval", help="evaluate a model pack or a training checkpoint")
        commands = evaluate.add_subparsers(dest="eval_command", metavar="EVAL")
        evaluate.set_defaults(func=lambda args: evaluate.print_help() or 2)
    else:
        commands = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    register_train_eval(commands)
    pairs = commands.choices.get("pairs")
    if pairs is not None and not any("--checkpoint" in a.option_strings for a in pairs._actions):
        add_checkpoint_option(pairs)


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="CKPT",
        help="embed with this training checkpoint's backbone instead of the pack's recogniser "
        "(detection and alignment still come from the pack)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for --checkpoint (cpu, cuda, cuda:1)")
    parser.add_argument("--trust-code", action="store_true",
                        help="import the pkg.mod:factory backbone the checkpoint names (runs its code)")


def apply_checkpoint(pipeline, args: argparse.Namespace):
    """The pipeline with its recogniser replaced by ``--checkpoint`` when given."""
    if getattr(args, "checkpoint", None) is None:
        return pipeline
    from training.evaluation.embed import use_checkpoint

    return use_checkpoint(pipeline, args.checkpoint, args.device, args.trust_code)


def register_train_eval(commands: argparse._SubParsersAction) -> None:
    """Add ``bin`` and ``ident`` to the ``eval`` sub-command group."""
    from cli.inference_cmd import add_pipeline_options

    b = commands.add_parser("bin", help="1:1 verification on an insightface .bin set (aligned pairs)")
    b.add_argument(
        "--bin", type=Path, required=True, help="e.g. lfw.bin (make one: marginface data make-bin)"
    )
    b.add_argument("--flip", action="store_true", help="flip test-time augmentation (protocol default)")
    b.add_argument("--json", type=Path, metavar="OUT", help="also write the result to this file")
    b.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write ROC and similarity-histogram PNGs, and the pair scores (.npz), here",
    )
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument(
        "--engine",
        choices=["torch", "onnx"],
        default="torch",
        help="with --checkpoint: run the backbone in PyTorch, or export it to ONNX and run it with "
        "ONNX Runtime (faster on CPU)",
    )
    add_checkpoint_option(b)
    add_pipeline_options(b)
    b.set_defaults(func=run_bin)

    i = commands.add_parser("ident", help="1:N identification: rank-k and TPIR@FPIR (FAISS search)")
    i.add_argument("--gallery", type=Path, help="<dir>/<identity>/*.jpg enrolled images")
    i.add_argument(
        "--probes",
        type=Path,
        help="<dir>/<identity>/*.jpg; identities absent from the gallery are non-mated probes",
    )
    i.add_argument("--distractors", type=Path, help="images added to the gallery under no identity")
    i.add_argument("--aligned", action="store_true", help="images are aligned 112×112 crops (no detection)")
    i.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    i.add_argument("--ranks", default="1,5,10", help="comma-separated k for rank-k accuracy")
    i.add_argument("--fpir", default="0.1,0.01,0.001", help="comma-separated FPIRs for TPIR@FPIR")
    i.add_argument("--json", type=Path, metavar="OUT", help="also write the result to this file")
    add_checkpoint_option(i)
    add_pipeline_options(i)
    from cli.eval_cmd import add_openset_options  # issue 11: open-set report (FNIR@FPIR, DET, --root)

    add_openset_options(i)
    i.set_defaults(func=run_ident)


def _emit(data: dict, out: Path | None) -> None:
    text = json.dumps(data, indent=2, default=float)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)


def run_bin(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    from tqdm import tqdm

    from training.evaluation.verification import (
        embed_bin_images,
        load_bin,
        pair_cosines,
        verification_report,
        write_plots,
    )

    images, issame = load_bin(args.bin)
    start = time.perf_counter()
    if args.checkpoint is not None:
        from training.evaluation.embed import embed_crops, load_backbone

        backbone, _ = load_backbone(args.checkpoint, args.device, args.trust_code)
        work = None
        if args.engine == "onnx":
            import tempfile

            from training.evaluation.embed import OnnxBackbone

            work = tempfile.TemporaryDirectory(prefix="marginface-eval-")
            backbone = OnnxBackbone(backbone, work.name)

        def embed(crops):
            return embed_crops(
                backbone, crops, flip=args.flip, batch_size=args.batch_size, device=args.device, progress=True
            )

        source = {"checkpoint": str(args.checkpoint), "engine": args.engine}
    else:
        from cli.inference_cmd import load_pipeline

        pipeline = load_pipeline(args)

        def embed(crops):
            chunks = range(0, len(crops), args.batch_size)
            return np.concatenate(
                [
                    pipeline.embed_crops(np.stack(crops[i : i + args.batch_size]), flip=args.flip)
                    for i in tqdm(chunks, unit="batch", desc="embedding")
                ]
            )

        source = {"pack": pipeline.pack_name}
    embeddings = embed_bin_images(embed, images)
    seconds = time.perf_counter() - start
    cos = pair_cosines(embeddings)
    data = verification_report(cos, issame)
    data.update(source, bin=str(args.bin), flip=args.flip, embed_seconds=round(seconds, 1))
    if args.plots:
        data["plots"] = write_plots(cos, issame, args.plots, args.bin.stem)
        scores = args.plots / f"{args.bin.stem}_pair_scores.npz"
        np.savez_compressed(scores, cosine=cos, issame=np.asarray(issame, dtype=bool))
        data["pair_scores"] = str(scores)
    _emit(data, args.json)
    return 0


def _pipeline_embed_fn(pipeline, flip: bool):
    import numpy as np

    from models.images import read_image
    from models.pipeline import select_face

    failures: list[str] = []

    def embed(paths: list[Path]) -> np.ndarray:
        out = np.zeros((len(paths), pipeline.embedding_size), np.float32)
        for k, path in enumerate(paths):
            image = read_image(path)
            faces = pipeline.detect(image)
            if not faces:
                failures.append(str(path))  # a zero embedding never matches
                continue
            out[k] = pipeline.embed_faces(image, [select_face(faces)], flip=flip)[0]
        return out

    return embed, failures


def run_ident(args: argparse.Namespace) -> int:
    from cli.eval_cmd import run_openset_ident, wants_openset

    if wants_openset(args) or args.gallery is None or args.probes is None:  # issue 11
        return run_openset_ident(args)
    from training.evaluation.ident_folders import identify_folders, read_aligned_crops

    ranks = tuple(int(k) for k in args.ranks.split(","))
    fpirs = tuple(float(f) for f in args.fpir.split(","))
    failures: list[str] = []
    if args.aligned and args.checkpoint is not None:
        from training.evaluation.embed import embed_crops, load_backbone

        backbone, _ = load_backbone(args.checkpoint, args.device, args.trust_code)

        def embed(paths):
            return embed_crops(backbone, read_aligned_crops(paths), flip=args.flip, device=args.device)
    else:
        from cli.inference_cmd import load_pipeline

        pipeline = apply_checkpoint(load_pipeline(args), args)
        if args.aligned:

            def embed(paths):
                return pipeline.embed_crops(read_aligned_crops(paths), flip=args.flip)
        else:
            embed, failures = _pipeline_embed_fn(pipeline, args.flip)
    result = identify_folders(args.gallery, args.probes, embed, args.distractors, ranks, fpirs)
    data = result.to_dict()
    data.update(
        gallery=str(args.gallery),
        probes=str(args.probes),
        flip=args.flip,
        images_without_face=len(failures),
        checkpoint=str(args.checkpoint) if args.checkpoint else None,
    )
    _emit(data, args.json)
    return 0

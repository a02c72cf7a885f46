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
    pairs.add_argument(
        "--workers", type=int, default=None, help="images processed concurrently (default: one per core)"
    )
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
    if args.workers is None or args.threads is None:  # issue 17: single-thread pipelines, one per core
        from models.topology import apply_topology, topology_for_pack

        topology = topology_for_pack(args.pack, args.providers, threads=args.threads, pipelines=args.workers)
        args.workers, args.threads = topology.pipelines, topology.threads
        apply_topology(topology)
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


# ``eval ident`` (registered by cli.eval_train_cmd) gains the open-set protocol (issue 11).
def add_openset_options(parser: argparse.ArgumentParser) -> None:
    """Options of the open-set report: a labelled root split by subject, or a gallery of the store."""
    parser.add_argument(
        "--root",
        type=Path,
        help="ROOT/<subject>/*.jpg: subjects split into enrolled (--per-subject photos in the gallery, the "
        "rest mated probes) and never enrolled (non-mated probes); replaces --gallery/--probes",
    )
    parser.add_argument(
        "--store-gallery",
        metavar="NAME",
        help="search this gallery of the server's store; --probes folders named like its subjects are "
        "mated, any other folder is non-mated",
    )
    parser.add_argument("--per-subject", type=int, default=2, help="--root: photos per enrolled subject")
    parser.add_argument("--enrolled-fraction", type=float, default=0.5, help="--root: share enrolled")
    parser.add_argument("--seed", type=int, default=0, help="--root: split seed")
    parser.add_argument(
        "--threshold",
        type=float,
        help="also report FPIR/FNIR at this threshold (default: the gallery's "
        "calibrated threshold with --store-gallery, else the pack's)",
    )
    parser.add_argument("--det-plot", type=Path, metavar="PNG", help="write the DET plot (FNIR vs FPIR)")


def wants_openset(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) for k in ("root", "store_gallery", "det_plot", "threshold"))


def run_openset_ident(args: argparse.Namespace) -> int:
    """Open-set identification: FNIR at FPIR 1e-1/1e-2/1e-3, DIR, rank-k, DET plot, JSON."""
    import numpy as np

    from cli.calibrate_cmd import embed_paths, labelled_images, split_root
    from cli.inference_cmd import load_pipeline
    from models.errors import MarginFaceError
    from models.evaluation.openset import det_plot, evaluate_open_set, subject_scores

    ranks = tuple(int(k) for k in args.ranks.split(","))
    fpirs = tuple(float(f) for f in args.fpir.split(","))
    threshold = args.threshold
    source: dict = {}
    if args.store_gallery:
        if args.probes is None:
            raise MarginFaceError("--store-gallery needs --probes", code="invalid_argument")
        gallery, labels, names, pipeline, cal = _store_gallery(args.store_gallery, args)
        paths, probe_names = labelled_images(args.probes)
        probes, ok = embed_paths(pipeline, paths, "probes")
        probe_labels = np.array([names.get(n, "~non-mated~") for n in probe_names])
        probes, probe_labels = probes[ok], probe_labels[ok]
        if threshold is None and cal is not None:
            threshold = float(cal["threshold_now"])
        source = {"store_gallery": args.store_gallery, "probes": str(args.probes), "calibration": cal}
    else:
        pipeline = load_pipeline(args)
        if args.root is not None:
            paths, names_all = labelled_images(args.root)
            emb, ok = embed_paths(pipeline, paths, "images")
            keep = np.flatnonzero(ok)
            all_labels = np.array([names_all[i] for i in keep])
            g, m, s = split_root(all_labels.tolist(), args.enrolled_fraction, args.per_subject, args.seed)
            gallery, labels = emb[keep][g], all_labels[g]
            probes = np.concatenate([emb[keep][m], emb[keep][s]])
            probe_labels = np.concatenate([all_labels[m], np.full(len(s), "~non-mated~")])
            source = {"root": str(args.root), "seed": args.seed, "per_subject": args.per_subject}
        else:
            if args.gallery is None or args.probes is None:
                raise MarginFaceError(
                    "give --gallery and --probes, --root, or --store-gallery", code="invalid_argument"
                )
            g_paths, g_names = labelled_images(args.gallery)
            p_paths, p_names = labelled_images(args.probes)
            gallery, g_ok = embed_paths(pipeline, g_paths, "gallery")
            probes, p_ok = embed_paths(pipeline, p_paths, "probes")
            gallery, labels = gallery[g_ok], np.array(g_names)[g_ok]
            probes, probe_labels = probes[p_ok], np.array(p_names)[p_ok]
            source = {"gallery": str(args.gallery), "probes": str(args.probes)}
        if threshold is None:
            threshold = float(pipeline.threshold)
    if len(gallery) == 0 or len(probes) == 0:
        raise MarginFaceError("no face was found in the gallery or probe images", code="not_enough_data")
    scores, subjects = subject_scores(gallery, labels, probes)
    result = evaluate_open_set(scores, subjects, probe_labels, fpirs, ranks, threshold=threshold)
    data = result.to_dict() | {"source": source, "pack": pipeline.pack_name}
    if args.det_plot:
        marks = {}
        if result.at_threshold:
            r = result.at_threshold
            marks["threshold"] = [(max(r["fpir"], 1e-4), r["fnir"], f"t={threshold:.3f}")]
        det_plot({"open-set": result.det}, args.det_plot, marks)
        data["det_plot"] = str(args.det_plot)
    _emit_json(data, args.json)
    return 0


def _store_gallery(name: str, args: argparse.Namespace):
    """(embeddings, labels, subject name → label, pipeline, calibration) of a gallery of the store."""
    import numpy as np

    from app.calibration.estimate import threshold_for_size
    from app.calibration.service import gallery_embeddings
    from app.calibration.store import TrustStore
    from app.settings import Settings
    from app.store.db import make_engine
    from app.store.migrate import upgrade
    from app.store.repository import Repository
    from models.errors import MarginFaceError
    from models.pipeline import FacePipeline

    settings = Settings()
    engine = make_engine(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.get_gallery(name)
    if gallery is None:
        raise MarginFaceError(f"gallery {name!r} does not exist", code="gallery_not_found")
    emb, subject_ids = gallery_embeddings(repo, gallery)
    names = repo.subject_names(sorted(set(subject_ids.tolist())))
    labels = np.array([names[int(s)] for s in subject_ids])
    providers = args.providers.split(",") if args.providers else None
    pipeline = FacePipeline.from_pack(gallery.pack_name, providers, threads=args.threads)
    row = TrustStore(repo).get(gallery.id)
    cal = None
    if row is not None and row.calibration:
        cal = row.calibration | {"threshold_now": threshold_for_size(row.calibration, len(names))}
    return emb, labels, {n: n for n in names.values()}, pipeline, cal


def _emit_json(data: dict, out: Path | None) -> None:
    text = json.dumps(data, indent=2, default=float)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)

"""``marginface calibrate``: the identification threshold of a gallery for a target FPIR (and a 1:1
threshold for a target FAR), from the gallery's own subjects, impostor photos and labelled probes.

    marginface calibrate --gallery staff --impostors strangers/ [--probes labelled/] [--target-fpir 0.01]
    marginface calibrate --root people/ [--per-subject 2]        # folders only: nothing is stored
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from cli.inference_cmd import add_pipeline_options

    p = subparsers.add_parser(
        "calibrate",
        help="threshold of a gallery for a target FPIR (stored with the gallery) and a 1:1 threshold",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--gallery", help="a gallery of the server's store (MARGINFACE_* settings)")
    source.add_argument("--root", type=Path, help="ROOT/<subject>/*.jpg: split into enrolled and strangers")
    p.add_argument("--impostors", type=Path, help="photos of people NOT in the gallery (any layout)")
    p.add_argument("--probes", type=Path, help="PROBES/<subject name>/*.jpg; unknown names are strangers")
    p.add_argument("--no-gallery-faces", action="store_true", help="do not score the gallery's own faces")
    p.add_argument("--target-fpir", type=float, default=1e-2, help="default 0.01")
    p.add_argument("--target-far", type=float, default=1e-3, help="1:1 false accept rate (default 0.001)")
    p.add_argument("--growth-limit", type=float, default=2.0, help="advise recalibration past this growth")
    p.add_argument("--per-subject", type=int, default=2, help="--root: photos per enrolled subject")
    p.add_argument("--enrolled-fraction", type=float, default=0.5, help="--root: share of subjects enrolled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="print, do not store with the gallery")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the record here")
    add_pipeline_options(p)
    p.set_defaults(func=run_calibrate)


def list_images(root: Path) -> list[Path]:
    from models.errors import MarginFaceError

    if not root.is_dir():
        raise MarginFaceError(f"folder not found: {root}", code="not_found")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def labelled_images(root: Path) -> tuple[list[Path], list[str]]:
    """(paths, subject folder name of each) for ROOT/<subject>/<image>."""
    from models.errors import MarginFaceError

    if not root.is_dir():
        raise MarginFaceError(f"folder not found: {root}", code="not_found")
    paths, names = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(image)
                names.append(folder.name)
    return paths, names


def embed_paths(pipeline, paths: list[Path], desc: str) -> tuple[np.ndarray, np.ndarray]:
    """(N×D embeddings of each image's largest face, ok mask); progress on stderr. Server path: no flip."""
    import cv2
    from tqdm import tqdm

    from models.pipeline import select_face

    out = np.zeros((len(paths), pipeline.embedding_size), np.float32)
    ok = np.zeros(len(paths), bool)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", file=sys.stderr)):
        image = cv2.imread(str(path))
        faces = pipeline.detect(image) if image is not None else []
        if faces:
            out[i] = pipeline.embed_faces(image, [select_face(faces)])[0]
            ok[i] = True
    return out, ok


def _emit(record: dict, out: Path | None) -> None:
    text = json.dumps(record, indent=2, default=float)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)


def run_calibrate(args: argparse.Namespace) -> int:
    from models.errors import MarginFaceError

    if not 0 < args.target_fpir < 0.5 or not 0 < args.target_far < 0.5:
        raise MarginFaceError("--target-fpir and --target-far must lie in (0, 0.5)", code="invalid_argument")
    if args.root is not None:
        return _run_root(args)
    return _run_gallery(args)


def _run_gallery(args: argparse.Namespace) -> int:
    from app.calibration.service import calibrate_gallery
    from app.services.errors import ServiceError
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
    gallery = repo.get_gallery(args.gallery)
    if gallery is None:
        raise MarginFaceError(f"gallery {args.gallery!r} does not exist", code="gallery_not_found")
    impostors = probes = probe_subjects = None
    if args.impostors or args.probes:
        providers = args.providers.split(",") if args.providers else None
        pipeline = FacePipeline.from_pack(gallery.pack_name, providers, threads=args.threads)
        if pipeline.manifest.version != gallery.pack_version:
            raise MarginFaceError(
                f"the gallery uses {gallery.pack_name} {gallery.pack_version}, the installed pack is "
                f"{pipeline.manifest.version}",
                code="pack_version_mismatch",
            )
        if args.impostors:
            emb, ok = embed_paths(pipeline, list_images(args.impostors), "impostors")
            impostors = emb[ok]
        if args.probes:
            paths, names = labelled_images(args.probes)
            emb, ok = embed_paths(pipeline, paths, "probes")
            ids = {}
            for name in set(names):
                found = repo.get_subject_by_name(gallery.id, name)
                ids[name] = found.id if found is not None else -1
            probes, probe_subjects = emb[ok], np.array([ids[n] for n in names])[ok]
    try:
        record = calibrate_gallery(
            repo,
            gallery,
            impostors=impostors,
            probes=probes,
            probe_subjects=probe_subjects,
            use_gallery=not args.no_gallery_faces,
            target_fpir=args.target_fpir,
            target_far=args.target_far,
            growth_limit=args.growth_limit,
            save=not args.dry_run,
        )
    except ServiceError as exc:
        raise MarginFaceError(exc.message, code=exc.code) from None
    record["stored"] = not args.dry_run
    _emit(record, args.json)
    print(
        f"gallery {gallery.name}: threshold {record['threshold']} for FPIR {args.target_fpir:g} at "
        f"{record['gallery_subjects']} subjects (95% CI {record['threshold_ci95']}), 1:1 threshold "
        f"{record['verify']['threshold']} for FAR {args.target_far:g}; "
        + ("stored" if not args.dry_run else "not stored (--dry-run)"),
        file=sys.stderr,
    )
    return 0


def split_root(names: list[str], fraction: float, per_subject: int, seed: int):
    """Indices: gallery, mated probes, strangers; subjects split at random by ``fraction``."""
    rng = np.random.default_rng(seed)
    labels = np.array(names)
    subjects = np.unique(labels)
    rng.shuffle(subjects)
    enrolled = set(subjects[: max(1, int(round(fraction * len(subjects))))].tolist())
    gallery, mated, strangers = [], [], []
    for subject in subjects:
        rows = np.flatnonzero(labels == subject)
        if subject in enrolled:
            gallery += rows[:per_subject].tolist()
            mated += rows[per_subject:].tolist()
        else:
            strangers += rows.tolist()
    return np.array(gallery, int), np.array(mated, int), np.array(strangers, int)


def _run_root(args: argparse.Namespace) -> int:
    from app.calibration.estimate import calibrate
    from app.calibration.sources import build_input
    from cli.inference_cmd import load_pipeline
    from models.errors import MarginFaceError

    paths, names = labelled_images(args.root)
    if len(set(names)) < 3:
        raise MarginFaceError("--root needs at least 3 subject folders", code="not_enough_data")
    pipeline = load_pipeline(args)
    emb, ok = embed_paths(pipeline, paths, "images")
    keep = np.flatnonzero(ok)
    names_ok = [names[i] for i in keep]
    g, m, s = split_root(names_ok, args.enrolled_fraction, args.per_subject, args.seed)
    labels = np.array(names_ok)
    emb = emb[keep]
    try:
        data, counts = build_input(
            emb[g],
            labels[g],
            impostors=emb[s],
            probes=emb[m],
            probe_labels=labels[m],
            use_gallery=not args.no_gallery_faces,
        )
        record = calibrate(data, args.target_fpir, args.target_far, args.growth_limit)
    except ValueError as exc:
        raise MarginFaceError(str(exc), code="not_enough_data") from None
    record["samples"]["sources"] = counts
    record["pack"] = {"name": pipeline.pack_name, "version": pipeline.manifest.version}
    record["stored"] = False
    _emit(record, args.json)
    return 0

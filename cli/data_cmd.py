"""``marginface data …``: prepare training and verification data (align, pack, make-bin, info)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="prepare training data (align photos, RecordIO, .bin sets)")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")

    p = sub.add_parser(
        "align",
        help="detect and align raw photos into 112×112 crops (SRC/<identity>/… → DST/<identity>/…)",
        description="Largest face per photo, aligned to the ArcFace template; photos without a face are "
        "listed in DST/align_misses.txt, the summary is DST/align_report.json. Existing crops are kept.",
    )
    p.add_argument("src", help="folder of raw photos, one sub-folder per identity")
    p.add_argument("dst", help="output folder for the aligned crops")
    p.add_argument("--pack", default="default", help="model pack for detection (default: default)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--overwrite", action="store_true", help="re-align photos whose crop already exists")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the crops (default 95)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_align)

    p = sub.add_parser(
        "pack",
        help="pack aligned crops (ROOT/<identity>/*.jpg) into insightface RecordIO (train.rec + train.idx)",
    )
    p.add_argument("root", help="folder of aligned 112×112 crops, one sub-folder per identity")
    p.add_argument("out", help="output folder for <name>.rec, <name>.idx and <name>.classes.txt")
    p.add_argument("--name", default="train", help="file name stem (default: train)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_pack)

    p = sub.add_parser(
        "make-bin",
        help="make an insightface verification .bin from an LFW-style pairs file and an image folder",
        description="Images already 112×112 are stored as they are; others are detected and aligned "
        "(images without a face: mean landmarks of same-size images, else the central square).",
    )
    p.add_argument("--images", required=True, help="image folder (<Name>/<Name>_NNNN.jpg)")
    p.add_argument("--pairs", required=True, help="pairs file: header '<folds> <n>', then pair lines")
    p.add_argument("--out", required=True, help="output .bin")
    p.add_argument("--pack", default="default", help="model pack for detection (default: default)")
    p.add_argument("--face", choices=("largest", "central"), default="largest",
                   help="which detected face to align (default: largest; LFW names the central person)")
    p.add_argument("--workers", type=int, default=2, help="detection threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_make_bin)

    p = sub.add_parser("info", help="summarise a dataset: identity folder, .rec or verification .bin")
    p.add_argument("path", help="folder, .rec (its .idx next to it) or .bin")
    p.set_defaults(func=run_info)
    data.set_defaults(func=lambda _args: data.print_help() or 2)


def run_align(args: argparse.Namespace) -> int:
    from training.data.align import align_folder

    summary = align_folder(args.src, args.dst, pack=args.pack, workers=args.workers,
                           overwrite=args.overwrite, jpeg_quality=args.quality, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    misses = summary["no_face"] + summary["unreadable"] + summary["failed"]
    if misses:
        print(f"{misses} photo(s) gave no crop: see {summary['misses_file']}")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from training.data.pack_folder import pack_image_folder

    summary = pack_image_folder(args.root, args.out, args.name, progress=not args.no_progress)
    print(json.dumps(summary, indent=2))
    return 0


def run_make_bin(args: argparse.Namespace) -> int:
    from training.data.make_bin import make_verification_bin

    summary = make_verification_bin(args.images, args.pairs, args.out, pack=args.pack, face=args.face,
                                    workers=args.workers, progress=not args.no_progress)
    fallback = summary.pop("no_face_images")
    print(json.dumps(summary, indent=2))
    if fallback:
        print(f"{len(fallback)} image(s) had no detected face and were aligned by fallback:")
        for path in fallback:
            print(f"  {path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import numpy as np

    from training.data import ImageFolderDataset, RecordIODataset, load_bin_raw

    path = Path(args.path)
    if path.suffix == ".bin":
        images, issame = load_bin_raw(path)
        info = {"kind": "verification .bin", "pairs": len(issame), "same": int(issame.sum()),
                "images": len(images)}
    else:
        dataset = RecordIODataset(path) if path.suffix == ".rec" else ImageFolderDataset(path)
        counts = np.bincount(dataset.targets, minlength=dataset.num_classes)
        info = {"kind": type(dataset).__name__, "images": len(dataset), "identities": dataset.num_classes,
                "images_per_identity": {"min": int(counts.min()), "median": float(np.median(counts)),
                                        "max": int(counts.max())}}
    print(json.dumps(info, indent=2))
    return 0

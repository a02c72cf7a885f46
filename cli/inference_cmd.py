"""``marginface detect | embed | compare``: the inference pipeline on image files, JSON on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Landmark colours (BGR): left eye, right eye, nose, left mouth corner, right mouth corner.
LANDMARK_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255)]


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """--pack, --providers, --threads: shared by every command that loads a pipeline."""
    parser.add_argument(
        "--pack", default="default", help="installed pack name or pack folder (default: default)"
    )
    parser.add_argument(
        "--providers",
        default=None,
        help="execution providers in order, e.g. 'cuda,cpu' (default: best available)",
    )
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per session")


def load_pipeline(args: argparse.Namespace, **detector_options):
    from models.pipeline import FacePipeline

    providers = args.providers.split(",") if args.providers else None
    options = {k: v for k, v in detector_options.items() if v is not None}
    return FacePipeline.from_pack(args.pack, providers, threads=args.threads, **options)


def register(subparsers) -> None:
    detect = subparsers.add_parser("detect", help="detect faces in an image (JSON: boxes, scores, landmarks)")
    detect.add_argument("image", type=Path)
    detect.add_argument("--draw", type=Path, metavar="OUT.png", help="also write the image with faces drawn")
    detect.add_argument("--score-threshold", type=float, default=None)
    detect.add_argument("--max-faces", type=int, default=None, help="keep the largest N faces")
    detect.add_argument("--min-size", type=float, default=None, help="drop faces smaller than this (pixels)")
    add_pipeline_options(detect)
    detect.set_defaults(func=run_detect)

    embed = subparsers.add_parser("embed", help="embed one face of an image (JSON: embedding)")
    embed.add_argument("image", type=Path)
    embed.add_argument(
        "--face", type=int, default=None, help="face index as listed by detect (default: largest)"
    )
    embed.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    add_pipeline_options(embed)
    embed.set_defaults(func=run_embed)

    compare = subparsers.add_parser("compare", help="cosine similarity of the faces in two images")
    compare.add_argument("image1", type=Path)
    compare.add_argument("image2", type=Path)
    compare.add_argument("--face1", type=int, default=None, help="face index in image1 (default: largest)")
    compare.add_argument("--face2", type=int, default=None, help="face index in image2 (default: largest)")
    compare.add_argument(
        "--threshold", type=float, default=None, help="match threshold (default: the pack's)"
    )
    compare.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    add_pipeline_options(compare)
    compare.set_defaults(func=run_compare)


def _print(data: dict) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def run_detect(args: argparse.Namespace) -> int:
    from models.images import read_image

    image = read_image(args.image)  # bad input fails before any model is loaded
    pipeline = load_pipeline(args)
    faces = pipeline.detect(
        image, score_threshold=args.score_threshold, max_faces=args.max_faces, min_size=args.min_size
    )
    if args.draw:
        draw_faces(image, faces, args.draw)
    _print(
        {
            "image": str(args.image),
            "width": image.shape[1],
            "height": image.shape[0],
            "pack": pipeline.pack_name,
            "providers": pipeline.providers["detector"],
            "faces": [dict(face.to_dict(), index=i) for i, face in enumerate(faces)],
            **({"drawing": str(args.draw)} if args.draw else {}),
        }
    )
    return 0


def _embed_one(pipeline, image, path: Path, index: int | None, flip: bool):
    from models.errors import MarginFaceError
    from models.pipeline import select_face

    faces = pipeline.detect(image)
    try:
        face = select_face(faces, index)
    except MarginFaceError as exc:
        raise type(exc)(f"{path}: {exc}", code=exc.code) from None
    pipeline.embed_faces(image, [face], flip=flip)
    index = next(i for i, f in enumerate(faces) if f is face)
    info = dict(face.to_dict(), index=index, faces_found=len(faces))
    return face, info


def run_embed(args: argparse.Namespace) -> int:
    from models.images import read_image

    image = read_image(args.image)
    pipeline = load_pipeline(args)
    face, info = _embed_one(pipeline, image, args.image, args.face, args.flip)
    _print(
        {
            "image": str(args.image),
            "pack": pipeline.pack_name,
            "face": info,
            "flip": args.flip,
            "embedding_size": int(face.embedding.shape[0]),
            "embedding": [round(float(v), 7) for v in face.embedding],
        }
    )
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from models.images import read_image

    image1, image2 = read_image(args.image1), read_image(args.image2)
    pipeline = load_pipeline(args)
    face1, info1 = _embed_one(pipeline, image1, args.image1, args.face1, args.flip)
    face2, info2 = _embed_one(pipeline, image2, args.image2, args.face2, args.flip)
    similarity = pipeline.similarity(face1.embedding, face2.embedding)
    threshold = pipeline.threshold if args.threshold is None else args.threshold
    _print(
        {
            "similarity": round(similarity, 6),
            "match": bool(similarity >= threshold),
            "threshold": threshold,
            "pack": pipeline.pack_name,
            "flip": args.flip,
            "face1": dict(info1, image=str(args.image1)),
            "face2": dict(info2, image=str(args.image2)),
        }
    )
    return 0


def draw_faces(image, faces, out: Path) -> None:
    """Write ``image`` with boxes, scores and the five landmarks of ``faces`` to ``out``."""
    import cv2

    from models.errors import MarginFaceError

    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for index, face in enumerate(faces):
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        label = f"{index}: {face.score:.2f}"
        cv2.putText(
            canvas,
            label,
            (x1, max(y1 - 4, 12)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.25 * thickness + 0.2,
            (0, 255, 0),
            max(1, thickness - 1),
            cv2.LINE_AA,
        )
        for (x, y), colour in zip(face.landmarks, LANDMARK_COLOURS, strict=True):
            cv2.circle(
                canvas, (int(round(float(x))), int(round(float(y)))), thickness + 1, colour, -1, cv2.LINE_AA
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok = cv2.imwrite(str(out), canvas)
    except cv2.error as exc:
        raise MarginFaceError(f"cannot write {out}: {exc}", code="write_failed") from exc
    if not ok:
        raise MarginFaceError(f"cannot write {out} (use a .png or .jpg name)", code="write_failed")

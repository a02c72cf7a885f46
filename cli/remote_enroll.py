"""``marginface enroll DIR --gallery G --server URL``: the folder tree over HTTP (``marginface.client``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from models.errors import MarginFaceError


def enroll_remote(args: argparse.Namespace) -> int:
    """Prints the same summary as the local enroll; exit 1 when nothing was enrolled."""
    from marginface.client import APIError, Client, ConnectionFailed
    from marginface.client.bulk import enroll_tree, subject_folders

    root = Path(args.directory)
    if not root.is_dir():
        raise MarginFaceError(f"{args.directory} is not a folder", code="not_found")
    todo = subject_folders(root, args.limit)
    if not todo:
        raise MarginFaceError(f"no <subject>/<image> files under {args.directory}", code="no_images")
    total = sum(len(paths) for _, paths in todo)
    bar = tqdm(total=total, unit="img", desc=f"enroll {args.gallery} @ {args.server}", file=sys.stderr)
    try:
        with Client(args.server, api_key=args.api_key) as client:
            outcomes = enroll_tree(
                client, root, args.gallery, pack=args.pack, limit=args.limit, progress=bar.update
            )
    except (APIError, ConnectionFailed) as exc:
        raise MarginFaceError(str(exc), code=getattr(exc, "code", "connection_failed")) from None
    finally:
        bar.close()
    rejected = {k: v for k, v in outcomes.items() if k != "enrolled"}
    print(
        f"{len(todo)} subjects, {total} images: {outcomes['enrolled']} enrolled, "
        f"{sum(rejected.values())} rejected"
        + (f" ({', '.join(f'{k}: {v}' for k, v in rejected.items())})" if rejected else "")
    )
    return 0 if outcomes["enrolled"] else 1

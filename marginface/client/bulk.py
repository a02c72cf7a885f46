"""Enroll a folder tree (DIR/<subject>/*.jpg) into a gallery on a server, through ``Client``."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from marginface.client.errors import NotFound, UnprocessableEntity
from marginface.client.sync import Client

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def subject_folders(root: Path, limit: int | None = None) -> list[tuple[str, list[Path]]]:
    """(subject name, image paths) per sub-folder, sorted; folders without images are skipped."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.append((folder.name, images[:limit] if limit else images))
    return found


def enroll_tree(
    client: Client,
    root: Path,
    gallery: str,
    *,
    pack: str | None = None,
    limit: int | None = None,
    batch: int = 8,
    progress: Callable[[int], None] | None = None,
) -> Counter:
    """Create ``gallery`` when missing, then enroll each subject's images ``batch`` at a time.
    Returns outcome counts: ``enrolled`` and one count per rejection code."""
    try:
        client.get_gallery(gallery)
    except NotFound:
        created = client.create_gallery(gallery, pack=pack)
        print(f"created gallery {gallery!r} on pack {created.get('pack')}", file=sys.stderr)
    outcomes: Counter = Counter()
    for name, paths in subject_folders(root, limit):
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            try:
                results = client.enroll(gallery, name, list(chunk))["results"]
            except UnprocessableEntity as exc:  # nothing in the chunk could be enrolled
                results = exc.details.get("results") or [{"error": {"code": exc.code}}] * len(chunk)
            for result in results:
                outcomes["enrolled" if "face_id" in result else result["error"]["code"]] += 1
            if progress:
                progress(len(chunk))
    return outcomes

"""``marginface enroll DIR --gallery G``: DIR/<subject>/*.jpg through the same services, not over HTTP."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from app.services.context import AppContext
from app.services.enrollment import ImageInput
from app.services.errors import ServiceError
from app.settings import Settings
from models.errors import MarginFaceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def subject_images(root: Path, limit: int | None) -> list[tuple[str, list[Path]]]:
    """(subject name, image paths) per sub-folder, sorted; folders without images are skipped."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.append((folder.name, images[:limit] if limit else images))
    return found


async def _enroll_all(ctx: AppContext, gallery_name: str, pack: str | None, todo, progress) -> Counter:
    gallery, created = ctx.galleries.get_or_create(gallery_name, pack)
    if created:
        print(f"created gallery {gallery_name!r} on pack {gallery.pack_name} {gallery.pack_version}")
    outcomes: Counter = Counter()
    rejected_examples: list[str] = []
    step = ctx.settings.max_images_per_enroll
    # issue 17: subjects run side by side, enough to keep every pipeline of the thread topology busy
    topology = getattr(ctx.engines, "topology", None)
    slots = asyncio.Semaphore(2 * (topology.pipelines if topology else 1))

    async def one_subject(name: str, paths: list[Path]) -> None:
        async with slots:
            subject = await asyncio.to_thread(ctx.repo.get_or_create_subject, gallery.id, name)
            for start in range(0, len(paths), step):
                chunk = paths[start : start + step]
                images = [ImageInput(p.read_bytes(), str(p)) for p in chunk]
                for result in await ctx.enrollment.enroll(gallery, subject, images):
                    if "face_id" in result:
                        outcomes["enrolled"] += 1
                    else:
                        outcomes[result["error"]["code"]] += 1
                        if len(rejected_examples) < 10:
                            rejected_examples.append(f"  {result['name']}: {result['error']['code']}")
                progress.update(len(chunk))

    await asyncio.gather(*(one_subject(name, paths) for name, paths in todo))
    progress.close()
    if rejected_examples:
        print("rejected, e.g.:\n" + "\n".join(rejected_examples))
    await ctx.close()
    return outcomes


def enroll_directory(
    directory: str, gallery: str, *, pack: str | None = None, limit: int | None = None
) -> int:
    """Enroll every subject folder of ``directory``; prints a summary of rejections by reason."""
    root = Path(directory)
    if not root.is_dir():
        raise MarginFaceError(f"{directory} is not a folder", code="not_found")
    todo = subject_images(root, limit)
    if not todo:
        raise MarginFaceError(f"no <subject>/<image> files under {directory}", code="no_images")
    ctx = AppContext(Settings(auth=False))  # local, direct access to the store: no key needed
    ctx.open()
    if not ctx.engines.loaded():
        raise MarginFaceError(f"no model pack could be loaded: {ctx.engines.errors}", code="pack_not_loaded")
    total = sum(len(paths) for _, paths in todo)
    progress = tqdm(total=total, unit="img", desc=f"enroll {gallery}", file=sys.stderr)
    try:
        outcomes = asyncio.run(_enroll_all(ctx, gallery, pack, todo, progress))
    except ServiceError as exc:
        raise MarginFaceError(exc.message, code=exc.code) from None
    rejected = {k: v for k, v in outcomes.items() if k != "enrolled"}
    print(
        f"{len(todo)} subjects, {total} images: {outcomes['enrolled']} enrolled, "
        f"{sum(rejected.values())} rejected"
        + (f" ({', '.join(f'{k}: {v}' for k, v in rejected.items())})" if rejected else "")
    )
    return 0 if outcomes["enrolled"] else 1

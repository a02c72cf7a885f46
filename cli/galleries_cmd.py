"""``marginface galleries migrate G --pack NEW``: move a gallery to another model pack (no HTTP)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    galleries = subparsers.add_parser("galleries", help="gallery maintenance on the store (no HTTP)")
    actions = galleries.add_subparsers(dest="action", metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="re-embed a gallery's stored face crops with another pack, then switch atomically",
        description="Re-embeds every stored crop with PACK while servers keep answering from the old index,"
        " then switches the gallery in one transaction; servers rebuild its index from the store. Run it "
        "again to resume after a crash. Servers must load PACK to serve the gallery afterwards.",
    )
    migrate.add_argument("gallery")
    migrate.add_argument("--pack", required=True, help="installed pack name or folder to move to")
    migrate.add_argument("--database-url", default=None, help="store URL (default: the server's settings)")
    migrate.set_defaults(func=cmd_migrate)
    galleries.set_defaults(func=lambda args: galleries.print_help() or 2)


def cmd_migrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.gallery_migration.service import GalleryMigrator, TargetPack
    from app.settings import Settings
    from app.store.db import make_engine
    from app.store.migrate import upgrade
    from app.store.repository import Repository
    from models.errors import MarginFaceError
    from models.pipeline import FacePipeline

    settings = Settings()
    url = args.database_url or settings.resolved_database_url()
    engine = make_engine(url, sqlite_synchronous=settings.sqlite_synchronous)
    upgrade(engine)
    gallery = Repository(engine).get_gallery(args.gallery)
    if gallery is None:
        raise MarginFaceError(f"gallery {args.gallery!r} does not exist", code="gallery_not_found")
    target = TargetPack.from_pipeline(FacePipeline.from_pack(args.pack, providers=settings.providers))
    bar = tqdm(desc=f"migrate {gallery.name} → {target.name} {target.version}", unit="face")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        status = GalleryMigrator(engine).run(gallery, target, progress)
    finally:
        bar.close()
        engine.dispose()
    print(f"gallery {gallery.name}: {status['total']} faces now on {target.name} {target.version}")
    return 0

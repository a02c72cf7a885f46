"""``POST /galleries/{gallery}/migrate`` (admin): move a gallery to another loaded pack, in the background."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CtxDep
from app.auth import AdminKey
from app.errors import ApiError
from app.gallery_migration.repository import MigrationRepository
from app.gallery_migration.service import GalleryMigrator, MigrationError, TargetPack, resume_stale

log = logging.getLogger("marginface.migration")
router = APIRouter(prefix="/galleries/{gallery}", tags=["galleries"])
_STATUS = {"same_pack": 409, "crops_missing": 409, "negatives_without_crop": 409, "migration_running": 409}
RESUME_EVERY_S = 15.0  # how often a server looks for migrations whose process stopped


class MigrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pack: str = Field(description="a pack loaded by this server (name), the gallery's new model")
    wait: bool = Field(default=False, description="answer when the switch is done (else 202 at once)")


def _running(ctx) -> dict[int, asyncio.Task]:  # noqa: ANN001 - AppContext
    tasks = getattr(ctx, "_migrations", None)
    if tasks is None:
        tasks = ctx._migrations = {}
    return tasks


@router.post("/migrate", dependencies=[AdminKey], status_code=202)
async def migrate_gallery(gallery: str, body: MigrateRequest, ctx: CtxDep) -> JSONResponse:
    """Re-embed every stored crop with ``pack`` while the current index keeps answering, then switch
    atomically. Progress in ``GET /galleries/{gallery}`` (``migration``); posting again resumes a
    migration that a crash or restart interrupted. 409 ``crops_missing`` when faces have no stored crop."""
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    engine = ctx.engines.get(body.pack)
    target = TargetPack.from_pipeline(engine.pipeline)

    migrator = GalleryMigrator(ctx.db, on_switch=_dropper(ctx))
    tasks = _running(ctx)
    task = tasks.get(owner.id)
    if task is not None and not task.done():
        raise ApiError(409, "migration_running", f"gallery {gallery!r} is being migrated; see GET /galleries")
    try:
        await asyncio.to_thread(migrator.start, owner, target)
    except MigrationError as exc:
        raise ApiError(_STATUS.get(exc.code, 400), exc.code, exc.message) from None
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(migrator.run, owner, target))
    task.add_done_callback(_log_failure)
    tasks[owner.id] = task
    if body.wait:
        try:
            await asyncio.shield(task)
        except MigrationError as exc:
            raise ApiError(_STATUS.get(exc.code, 500), exc.code, exc.message) from None
    status = await asyncio.to_thread(MigrationRepository(ctx.db).describe, owner.id)
    return JSONResponse({"gallery": gallery, "migration": status}, status_code=200 if body.wait else 202)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("gallery migration failed: %s", task.exception())


def _dropper(ctx):  # noqa: ANN001, ANN202 - AppContext
    def switched(migrated) -> None:  # noqa: ANN001 - Gallery
        ctx.indexes.drop(migrated.id)  # rebuilt from the store (new embeddings) on next use

    return switched


def _loaded_target(ctx):  # noqa: ANN001, ANN202 - AppContext
    def find(name: str, version: str) -> TargetPack | None:
        try:
            engine = ctx.engines.get(name, version)
        except Exception:  # noqa: BLE001 - not loaded here (503) or another version (409)
            return None
        return TargetPack.from_pipeline(engine.pipeline)

    return find


async def resume_migrations(ctx, every_s: float | None = None) -> None:  # noqa: ANN001 - AppContext
    """Server background loop: take over migrations whose process stopped (a restart, a kill) once they
    are stale, when this server has their target pack loaded; several servers agree through the store."""
    while True:
        try:
            await asyncio.to_thread(resume_stale, ctx.db, _loaded_target(ctx), _dropper(ctx))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a store outage: try again next round
            log.warning("resuming gallery migrations: %s", exc)
        await asyncio.sleep(RESUME_EVERY_S if every_s is None else every_s)


def start_resuming(ctx) -> asyncio.Task:  # noqa: ANN001 - AppContext
    """Start ``resume_migrations`` on the running loop (the server's lifespan cancels it on shutdown)."""
    return asyncio.get_running_loop().create_task(resume_migrations(ctx), name="migration-resume")

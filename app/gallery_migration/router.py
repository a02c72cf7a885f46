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
from app.gallery_migration.service import GalleryMigrator, MigrationError, TargetPack

log = logging.getLogger("marginface.migration")
router = APIRouter(prefix="/galleries/{gallery}", tags=["galleries"])
_STATUS = {"same_pack": 409, "crops_missing": 409, "migration_running": 409}


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

    def switched(migrated) -> None:  # noqa: ANN001 - Gallery
        ctx.indexes.drop(migrated.id)  # rebuilt from the store (new embeddings) on next use

    migrator = GalleryMigrator(ctx.db, on_switch=switched)
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

"""``GalleryMigrator``: re-embed a gallery's crops with a new pack beside the live index, then switch.

The old index answers every request while the new embeddings are computed and stored (the shadow); the
switch is one store transaction (every face and the gallery take the new pack together, so a gallery
never mixes packs), after which every process rebuilds the gallery's index from the store (change-log
kind ``gallery_migrated``). Work is saved per chunk: running the same migration again resumes it, and a
server resumes by itself a migration whose process stopped (``resume_stale``). Negatives (issue 11) taken
from a face take that face's new embedding at the switch; negatives without a crop refuse the migration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from sqlalchemy import Engine

from app.crops.repository import CropRepository
from app.crops.service import decode_crop
from app.gallery_migration.repository import MigrationRepository
from app.store.models import Gallery
from models.errors import MarginFaceError

log = logging.getLogger("marginface.migration")
CHUNK = 64
SWITCH_ATTEMPTS = 5
# A running migration not advanced for this long lost its process: a server that has the target pack
# loaded takes it over (a chunk of CHUNK crops takes seconds, so a live one is never this quiet).
STALE_AFTER_S = 60.0


class MigrationError(MarginFaceError):
    """Codes: ``same_pack``, ``crops_missing`` (re-enrollment needed), ``negatives_without_crop``,
    ``migration_failed``."""

    code = "migration_failed"


@dataclass
class TargetPack:
    """The pack to migrate to: its identity and a function from BGR crops to embeddings."""

    name: str
    version: str
    embedding_size: int
    input_size: int
    embed: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> TargetPack:
        size = int(pipeline.manifest.model("recogniser").input_size[0])
        return cls(
            pipeline.pack_name,
            pipeline.manifest.version,
            int(pipeline.embedding_size),
            size,
            pipeline.embed_crops,
        )


Progress = Callable[[int, int], None]


class GalleryMigrator:
    """Runs one gallery's migration to completion (blocking; call it in a worker thread)."""

    def __init__(
        self,
        engine: Engine,
        on_switch: Callable[[Gallery], None] | None = None,
        chunk: int | None = None,
    ) -> None:
        self.chunk = chunk or CHUNK
        self.repo = MigrationRepository(engine)
        self.crops = CropRepository(engine)
        self.on_switch = on_switch

    def check(self, gallery: Gallery, target: TargetPack) -> None:
        """Refuse what cannot work: the same pack, or faces whose crops were not kept."""
        if (gallery.pack_name, gallery.pack_version) == (target.name, target.version):
            raise MigrationError(
                f"gallery {gallery.name!r} is already on {target.name} {target.version}", "same_pack"
            )
        faces, _, without_crop = self.repo.counts(gallery.id)
        if without_crop:
            reason = (
                "the gallery keeps no crops (keep_crops is off)"
                if not gallery.keep_crops
                else ("they were enrolled before crops were kept")
            )
            raise MigrationError(
                f"{without_crop} of {faces} faces of {gallery.name!r} have no stored crop ({reason}): "
                "re-enroll them to move the gallery to another pack",
                "crops_missing",
            )
        orphans = self.repo.negatives_without_crop(gallery.id)
        if orphans:
            raise self._negatives_error(gallery, orphans)

    @staticmethod
    def _negatives_error(gallery: Gallery, count: int) -> MigrationError:
        return MigrationError(
            f"{count} negative example(s) of {gallery.name!r} were added from images (or from faces without "
            "a stored crop): another pack cannot re-embed them. Delete them, migrate, then add them again",
            "negatives_without_crop",
        )

    def start(self, gallery: Gallery, target: TargetPack) -> None:
        self.check(gallery, target)
        self.repo.start(gallery, target.name, target.version)

    def run(self, gallery: Gallery, target: TargetPack, progress: Progress | None = None) -> dict[str, Any]:
        """Embed every pending crop, then switch; resumes where a previous run stopped."""
        self.start(gallery, target)
        try:
            for _ in range(SWITCH_ATTEMPTS):
                self._embed_pending(gallery, target, progress)
                self.check(gallery, target)  # a face enrolled meanwhile without a crop
                switched = self.repo.switch(gallery.id, target.name, target.version, target.embedding_size)
                if switched is True:
                    break
                if switched:  # a negative without a crop was added meanwhile
                    raise self._negatives_error(gallery, int(switched))
            else:
                raise MigrationError("faces kept arriving faster than they could be migrated; run it again")
        except Exception as exc:
            self.repo.fail(gallery.id, f"{type(exc).__name__}: {exc}")
            raise
        log.info("gallery %s switched to %s %s", gallery.name, target.name, target.version)
        if self.on_switch is not None:
            self.on_switch(gallery)
        return self.repo.describe(gallery.id) or {}

    def _embed_pending(self, gallery: Gallery, target: TargetPack, progress: Progress | None) -> None:
        while True:
            chunk = self.repo.pending(gallery.id, self.chunk)
            if not chunk:
                return
            crops = np.stack([self._crop(c.data, target.input_size) for c in chunk])
            vectors = target.embed(crops)
            self.repo.save_shadows(gallery.id, target.version, [c.face_id for c in chunk], vectors)
            if progress is not None:
                faces, done, _ = self.repo.counts(gallery.id)
                progress(done, faces)

    @staticmethod
    def _crop(data: bytes, size: int) -> np.ndarray:
        crop = decode_crop(data)
        if crop.shape[0] != size:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        return crop


def resume_stale(
    engine: Engine,
    targets: Callable[[str, str], TargetPack | None],
    on_switch: Callable[[Gallery], None] | None = None,
    stale_after_s: float | None = None,
) -> list[dict[str, Any]]:
    """Finish every ``running`` migration whose process stopped (no progress for ``stale_after_s``) and
    whose target pack ``targets(name, version)`` can embed here; blocking. Returns their final states."""
    from app.store.models import Gallery as GalleryRow

    repo = MigrationRepository(engine)
    stale = STALE_AFTER_S if stale_after_s is None else stale_after_s
    finished = []
    for row in repo.running():
        target = targets(row.pack_name, row.pack_version)
        if target is None or not repo.claim_stale(row.gallery_id, stale):
            continue
        from sqlalchemy.orm import Session

        with Session(engine, expire_on_commit=False) as s:
            gallery = s.get(GalleryRow, row.gallery_id)
        if gallery is None:
            continue
        log.info("resuming the migration of gallery %s to %s %s", gallery.name, target.name, target.version)
        try:
            finished.append(GalleryMigrator(engine, on_switch=on_switch).run(gallery, target))
        except Exception as exc:  # noqa: BLE001 - recorded as failed by run(); the next one goes on
            log.error("resumed migration of gallery %s failed: %s", gallery.name, exc)
    return finished

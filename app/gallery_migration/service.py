"""``GalleryMigrator``: re-embed a gallery's crops with a new pack beside the live index, then switch.

The old index answers every request while the new embeddings are computed and stored (the shadow); the
switch is one store transaction (every face and the gallery take the new pack together, so a gallery
never mixes packs), after which every process rebuilds the gallery's index from the store (change-log
kind ``gallery_migrated``). Work is saved per chunk: running the same migration again resumes it.
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


class MigrationError(MarginFaceError):
    """Codes: ``same_pack``, ``crops_missing`` (re-enrollment needed), ``migration_failed``."""

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
                if self.repo.switch(gallery.id, target.name, target.version, target.embedding_size):
                    break
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

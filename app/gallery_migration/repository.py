"""Storage of gallery migrations: state, shadow embeddings, and the one-transaction switch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.calibration.store import SubjectNegative
from app.crops.models import FaceCrop
from app.crops.repository import StoredCrop
from app.gallery_migration.models import GalleryMigration, ShadowEmbedding
from app.store.models import Change, FaceRecord, Gallery, iso, utcnow

MIGRATED = "gallery_migrated"  # change-log kind: every process rebuilds the gallery's index from the store


class MigrationRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    def get(self, gallery_id: int) -> GalleryMigration | None:
        with self._session() as s:
            return s.get(GalleryMigration, gallery_id)

    def describe(self, gallery_id: int) -> dict[str, Any] | None:
        row = self.get(gallery_id)
        if row is None:
            return None
        return {
            "state": row.state,
            "from": {"name": row.from_pack_name, "version": row.from_pack_version},
            "to": {"name": row.pack_name, "version": row.pack_version},
            "done": row.done,
            "total": row.total,
            "error": row.error,
            "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at) if row.finished_at else None,
        }

    def start(self, gallery: Gallery, pack_name: str, pack_version: str) -> GalleryMigration:
        """Begin, or resume, a migration of ``gallery`` to the pack; another target drops old shadows."""
        with self._session() as s, s.begin():
            row = s.get(GalleryMigration, gallery.id, with_for_update=True)
            same = row is not None and (row.pack_name, row.pack_version) == (pack_name, pack_version)
            if row is not None and same and row.state in ("running", "failed"):  # resume
                row.state, row.error = "running", None
                return row
            s.execute(delete(ShadowEmbedding).where(ShadowEmbedding.gallery_id == gallery.id))
            if row is None:
                row = GalleryMigration(gallery_id=gallery.id)
                s.add(row)
            row.pack_name, row.pack_version = pack_name, pack_version
            row.from_pack_name, row.from_pack_version = gallery.pack_name, gallery.pack_version
            row.state, row.done, row.total, row.error = "running", 0, 0, None
            row.started_at = row.updated_at = utcnow()
            row.finished_at = None
            return row

    def pending(self, gallery_id: int, chunk: int) -> list[StoredCrop]:
        """Up to ``chunk`` faces of the gallery with a crop and no shadow embedding yet."""
        query = (
            select(FaceCrop.face_id, FaceRecord.subject_id, FaceCrop.media_type, FaceCrop.data)
            .join(FaceRecord, FaceRecord.id == FaceCrop.face_id)
            .outerjoin(ShadowEmbedding, ShadowEmbedding.face_id == FaceCrop.face_id)
            .where(FaceCrop.gallery_id == gallery_id, ShadowEmbedding.face_id.is_(None))
            .order_by(FaceCrop.face_id)
            .limit(chunk)
        )
        with self._session() as s:
            rows = s.execute(query).all()
        return [StoredCrop(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]

    def counts(self, gallery_id: int) -> tuple[int, int, int]:
        """(faces, faces with a shadow embedding, faces without a crop)."""
        with self._session() as s:
            faces = s.scalar(select(func.count()).where(FaceRecord.gallery_id == gallery_id)) or 0
            shadows = s.scalar(select(func.count()).where(ShadowEmbedding.gallery_id == gallery_id)) or 0
            crops = s.scalar(select(func.count()).where(FaceCrop.gallery_id == gallery_id)) or 0
        return int(faces), int(shadows), int(faces) - int(crops)

    def negatives_without_crop(self, gallery_id: int) -> int:
        """Negatives (issue 11) that cannot follow the gallery to another pack: added from an image, or
        from a face that has no stored crop (or no longer exists)."""
        with self._session() as s:
            return int(s.scalar(self._orphan_negatives(gallery_id, FaceCrop)) or 0)

    @staticmethod
    def _orphan_negatives(gallery_id: int, covered: type[FaceCrop] | type[ShadowEmbedding]) -> Any:
        """COUNT of the gallery's negatives whose face has no row in ``covered`` (crops or shadows)."""
        faces = select(covered.face_id).where(covered.gallery_id == gallery_id)
        return (
            select(func.count())
            .select_from(SubjectNegative)
            .where(
                SubjectNegative.gallery_id == gallery_id,
                or_(SubjectNegative.face_id.is_(None), SubjectNegative.face_id.not_in(faces)),
            )
        )

    def claim_stale(self, gallery_id: int, stale_after_s: float) -> bool:
        """Take over a ``running`` migration that nobody has advanced for ``stale_after_s`` (its process
        stopped: a restart, a kill). One compare-and-set on ``updated_at``: of several processes that
        try at once, one wins."""
        with self._session() as s, s.begin():
            row = s.get(GalleryMigration, gallery_id)
            if row is None or row.state != "running":
                return False
            seen = row.updated_at
            if seen is not None and seen.tzinfo is None:  # SQLite gives naive datetimes (stored as UTC)
                seen = seen.replace(tzinfo=utcnow().tzinfo)
            if seen is not None and utcnow() - seen < timedelta(seconds=stale_after_s):
                return False
            result = s.execute(
                update(GalleryMigration)
                .where(
                    GalleryMigration.gallery_id == gallery_id,
                    GalleryMigration.state == "running",
                    GalleryMigration.updated_at == row.updated_at,
                )
                .values(updated_at=utcnow())
            )
            return bool(result.rowcount)

    def running(self) -> list[GalleryMigration]:
        """Every migration in state ``running`` (some may have lost their process)."""
        with self._session() as s:
            return list(s.scalars(select(GalleryMigration).where(GalleryMigration.state == "running")))

    def save_shadows(
        self, gallery_id: int, version: str, face_ids: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Store new embeddings and advance the progress, in one transaction (a crash loses no work)."""
        with self._session() as s, s.begin():
            wanted = [int(f) for f in face_ids]
            present = set(s.scalars(select(FaceRecord.id).where(FaceRecord.id.in_(wanted))))
            # another process resuming the same migration may have stored some of them already
            present -= set(
                s.scalars(select(ShadowEmbedding.face_id).where(ShadowEmbedding.face_id.in_(wanted)))
            )
            s.add_all(
                ShadowEmbedding(
                    face_id=int(f),
                    gallery_id=gallery_id,
                    pack_version=version,
                    embedding=np.ascontiguousarray(v, dtype=np.float32).tobytes(),
                )
                for f, v in zip(face_ids, vectors, strict=True)
                if int(f) in present  # deleted meanwhile: nothing to migrate
            )
            self._progress(s, gallery_id)

    def _progress(self, s: Session, gallery_id: int) -> None:
        s.flush()
        done = s.scalar(select(func.count()).where(ShadowEmbedding.gallery_id == gallery_id)) or 0
        total = s.scalar(select(func.count()).where(FaceRecord.gallery_id == gallery_id)) or 0
        s.execute(
            update(GalleryMigration)
            .where(GalleryMigration.gallery_id == gallery_id)
            .values(done=int(done), total=int(total), updated_at=utcnow())
        )

    def shadow_vectors(self, gallery_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, subject ids, vectors) of the shadow: the index the gallery will have."""
        with self._session() as s:
            rows = s.execute(
                select(ShadowEmbedding.face_id, FaceRecord.subject_id, ShadowEmbedding.embedding)
                .join(FaceRecord, FaceRecord.id == ShadowEmbedding.face_id)
                .where(ShadowEmbedding.gallery_id == gallery_id)
                .order_by(ShadowEmbedding.face_id)
            ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        subjects = np.array([r[1] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[2], np.float32) for r in rows]) if rows else np.zeros((0, 0))
        return ids, subjects, vectors

    def switch(self, gallery_id: int, pack_name: str, pack_version: str, size: int) -> bool | int:
        """Atomically: every face takes its shadow embedding, the gallery its new pack, and every negative
        taken from a face (issue 11) that face's new embedding. False (nothing changed) when a face still
        lacks a shadow embedding; the number of negatives that cannot follow (nothing changed) when a
        negative without a crop was added meanwhile; True when switched."""
        with self._session() as s, s.begin():
            s.execute(select(Gallery.id).where(Gallery.id == gallery_id).with_for_update())
            missing = s.scalar(
                select(func.count())
                .select_from(FaceRecord)
                .outerjoin(ShadowEmbedding, ShadowEmbedding.face_id == FaceRecord.id)
                .where(FaceRecord.gallery_id == gallery_id, ShadowEmbedding.face_id.is_(None))
            )
            if missing:
                return False
            orphans = int(s.scalar(self._orphan_negatives(gallery_id, ShadowEmbedding)) or 0)
            if orphans:
                return orphans
            s.execute(
                update(SubjectNegative)
                .where(SubjectNegative.gallery_id == gallery_id)
                .values(
                    embedding=select(ShadowEmbedding.embedding)
                    .where(ShadowEmbedding.face_id == SubjectNegative.face_id)
                    .scalar_subquery()
                )
                .execution_options(synchronize_session=False)
            )
            shadow = (
                select(ShadowEmbedding.embedding)
                .where(ShadowEmbedding.face_id == FaceRecord.id)
                .scalar_subquery()
            )
            s.execute(
                update(FaceRecord)
                .where(FaceRecord.gallery_id == gallery_id)
                .values(embedding=shadow, pack_name=pack_name, pack_version=pack_version)
                .execution_options(synchronize_session=False)
            )
            s.execute(
                update(Gallery)
                .where(Gallery.id == gallery_id)
                .values(pack_name=pack_name, pack_version=pack_version, embedding_size=size)
            )
            s.execute(delete(ShadowEmbedding).where(ShadowEmbedding.gallery_id == gallery_id))
            s.execute(
                update(GalleryMigration)
                .where(GalleryMigration.gallery_id == gallery_id)
                .values(state="switched", finished_at=utcnow(), updated_at=utcnow())
            )
            # issue 11's calibration records its pack: it stops applying here by itself (decisions.service)
            s.add(Change(gallery_id=gallery_id, kind=MIGRATED))
        return True

    def fail(self, gallery_id: int, message: str) -> None:
        with self._session() as s, s.begin():
            s.execute(
                update(GalleryMigration)
                .where(GalleryMigration.gallery_id == gallery_id)
                .values(state="failed", error=message[:1000], updated_at=utcnow())
            )

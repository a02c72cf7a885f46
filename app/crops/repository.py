"""Storage of face crops behind a repository: reads, the per-gallery policy, and paging for migration."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.crops.models import FaceCrop
from app.store.models import FaceRecord, Gallery


@dataclass
class StoredCrop:
    """One face's crop as stored: encoded bytes and their media type."""

    face_id: int
    subject_id: int
    media_type: str
    data: bytes


class CropRepository:
    """Reads of the crop store; crops are written with their face by ``Repository.add_faces_many``."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    def get(self, gallery_id: int, face_id: int) -> StoredCrop | None:
        with self._session() as s:
            row = s.execute(
                select(FaceCrop.face_id, FaceRecord.subject_id, FaceCrop.media_type, FaceCrop.data)
                .join(FaceRecord, FaceRecord.id == FaceCrop.face_id)
                .where(FaceCrop.gallery_id == gallery_id, FaceCrop.face_id == face_id)
            ).first()
        return None if row is None else StoredCrop(int(row[0]), int(row[1]), row[2], row[3])

    def face_exists(self, gallery_id: int, face_id: int) -> bool:
        with self._session() as s:
            found = s.scalar(
                select(FaceRecord.id).where(FaceRecord.gallery_id == gallery_id, FaceRecord.id == face_id)
            )
        return found is not None

    def count(self, gallery_id: int) -> tuple[int, int]:
        """(faces with a crop, faces) in a gallery."""
        with self._session() as s:
            crops = s.scalar(select(func.count()).where(FaceCrop.gallery_id == gallery_id))
            faces = s.scalar(select(func.count()).where(FaceRecord.gallery_id == gallery_id))
        return int(crops or 0), int(faces or 0)

    def set_keep_crops(self, gallery_id: int, keep: bool) -> None:
        with self._session() as s, s.begin():
            s.execute(update(Gallery).where(Gallery.id == gallery_id).values(keep_crops=keep))

    def iter_crops(
        self, gallery_id: int, *, after: int = 0, chunk: int = 256, face_ids: list[int] | None = None
    ) -> Iterator[list[StoredCrop]]:
        """Chunks of a gallery's crops in face-id order, starting after ``after``."""
        while True:
            query = (
                select(FaceCrop.face_id, FaceRecord.subject_id, FaceCrop.media_type, FaceCrop.data)
                .join(FaceRecord, FaceRecord.id == FaceCrop.face_id)
                .where(FaceCrop.gallery_id == gallery_id, FaceCrop.face_id > after)
            )
            if face_ids is not None:
                query = query.where(FaceCrop.face_id.in_(face_ids))
            with self._session() as s:
                rows = s.execute(query.order_by(FaceCrop.face_id).limit(chunk)).all()
            if not rows:
                return
            yield [StoredCrop(int(r[0]), int(r[1]), r[2], r[3]) for r in rows]
            after = int(rows[-1][0])

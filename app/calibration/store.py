"""Tables of issue 11 and their reads/writes: each gallery's calibration and enrollment policy, and the
negative examples ("not this person") of its subjects. Same ``Base`` as the core store (migration 0004)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, LargeBinary, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from app.services.errors import Conflict
from app.store.hot_reads import json_value
from app.store.models import Base, BigId, utcnow
from app.store.repository import Repository


class GalleryTrust(Base):
    """One row per gallery that has a calibration or a policy (absent row: pack defaults)."""

    __tablename__ = "gallery_trust"

    gallery_id: Mapped[int] = mapped_column(
        ForeignKey("galleries.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SubjectNegative(Base):
    """An embedding that is NOT subject ``subject_id``: probes close to it are not matched to it."""

    __tablename__ = "subject_negatives"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str | None] = mapped_column(String(512), nullable=True)
    face_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


_NEGATIVES_SQL = (
    "SELECT subject_id, embedding FROM subject_negatives WHERE gallery_id = ? AND subject_id IN (*)"
)


class TrustRow(NamedTuple):
    """The part of a ``GalleryTrust`` row that decisions read (from the hot path's plain SQL)."""

    calibration: dict[str, Any] | None
    policy: dict[str, Any] | None


@dataclass
class IdentifyRows:
    """What ``/identify`` reads from the store after searching, in one connection."""

    names: dict[int, str]  # subject id → name, for the hits' subjects that still exist
    trust: TrustRow | None
    negatives: dict[int, np.ndarray]  # subject id → K×D negatives, for those that have any


class TrustStore:
    """Reads and writes of the trust tables, through the core repository's sessions."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.hot = repo.hot_reads

    def identify_rows(self, gallery_id: int, subject_ids: Sequence[int]) -> IdentifyRows:
        """Subject names, the gallery's trust row and the subjects' negatives: the same rows as
        ``repo.subject_names``, ``get`` and ``negatives_of``, as plain SQL on one pooled connection."""
        hot = self.hot
        with hot.connection() as conn:
            names = hot.subject_names(conn, subject_ids)
            found = hot.rows(conn, "SELECT calibration, policy FROM gallery_trust WHERE gallery_id = ?",
                             (gallery_id,))
            blobs = hot.rows(conn, _NEGATIVES_SQL, (gallery_id,), list(subject_ids)) if subject_ids else []
        trust = TrustRow(json_value(found[0][0]), json_value(found[0][1])) if found else None
        return IdentifyRows(names, trust, _stack_negatives(blobs))

    def get(self, gallery_id: int) -> GalleryTrust | None:
        with self.repo.session() as s:
            return s.get(GalleryTrust, gallery_id)

    def _put(self, gallery_id: int, **values: Any) -> GalleryTrust:
        """Insert or update the gallery's row; concurrent writers of one gallery retry (last one wins)."""
        for _ in range(3):
            try:
                with self.repo.session() as s:
                    row = s.get(GalleryTrust, gallery_id)
                    if row is None:
                        row = GalleryTrust(gallery_id=gallery_id)
                        s.add(row)
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.updated_at = utcnow()
                    s.flush()
                    return row
            except (IntegrityError, StaleDataError):
                continue  # another request inserted or removed the row meanwhile: read it again
        raise Conflict("the gallery changed while its settings were written; retry", code="concurrent_update")

    def set_calibration(self, gallery_id: int, calibration: dict[str, Any] | None) -> GalleryTrust:
        return self._put(gallery_id, calibration=calibration)

    def set_policy(self, gallery_id: int, policy: dict[str, Any] | None) -> GalleryTrust:
        return self._put(gallery_id, policy=policy)

    # negatives
    def add_negative(
        self, gallery_id: int, subject_id: int, embedding: np.ndarray, source: str | None, face_id: int | None
    ) -> SubjectNegative:
        row = SubjectNegative(
            gallery_id=gallery_id,
            subject_id=subject_id,
            embedding=np.ascontiguousarray(embedding, dtype=np.float32).tobytes(),
            source=source,
            face_id=face_id,
        )
        with self.repo.session() as s:
            s.add(row)
            s.flush()
        return row

    def list_negatives(self, gallery_id: int, subject_id: int) -> list[SubjectNegative]:
        with self.repo.session() as s:
            query = select(SubjectNegative).where(
                SubjectNegative.gallery_id == gallery_id, SubjectNegative.subject_id == subject_id
            )
            return list(s.scalars(query.order_by(SubjectNegative.id)))

    def delete_negative(self, gallery_id: int, subject_id: int, negative_id: int) -> bool:
        with self.repo.session() as s:
            result = s.execute(
                delete(SubjectNegative).where(
                    SubjectNegative.gallery_id == gallery_id,
                    SubjectNegative.subject_id == subject_id,
                    SubjectNegative.id == negative_id,
                )
            )
            return bool(result.rowcount)

    def negatives_of(self, gallery_id: int, subject_ids: list[int]) -> dict[int, np.ndarray]:
        """subject id → K×D negatives, for the subjects that have any."""
        if not subject_ids:
            return {}
        with self.repo.session() as s:
            rows = s.execute(
                select(SubjectNegative.subject_id, SubjectNegative.embedding).where(
                    SubjectNegative.gallery_id == gallery_id,
                    SubjectNegative.subject_id.in_(list(subject_ids)),
                )
            ).all()
        return _stack_negatives(rows)


def _stack_negatives(rows) -> dict[int, np.ndarray]:
    out: dict[int, list[np.ndarray]] = {}
    for subject_id, blob in rows:
        out.setdefault(int(subject_id), []).append(np.frombuffer(bytes(blob), dtype=np.float32))
    return {k: np.stack(v) for k, v in out.items()}

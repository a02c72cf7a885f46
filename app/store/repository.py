"""The store's repository: every read and write of galleries, subjects and faces, one transaction each.

Every write that changes what search returns also appends to the change log in the same transaction,
so other server processes replay it (see ``app.search.sync``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.crops.models import CROP_MEDIA_TYPE, FaceCrop
from app.store.changelog import ChangeLogReads
from app.store.errors import DuplicateError, MissingError, StoreUnavailable
from app.store.models import Change, FaceRecord, Gallery, Subject, utcnow

if TYPE_CHECKING:
    from app.store.hot_reads import HotReads


def _is_unavailable(exc: DBAPIError) -> bool:
    """True for a database that is down, restarting or locked too long; False for a bug in a query."""
    if exc.connection_invalidated:
        return True
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    return outage_text(str(exc.orig))


def outage_text(message: str) -> bool:
    """Whether an operational error's message means an outage: SQLite reports a missing table or a syntax
    error as an operational error too, and those are bugs."""
    text = message.lower()
    return not ("no such table" in text or "no such column" in text or "syntax error" in text)


_GALLERY_BY_NAME = select(Gallery.__table__).where(Gallery.__table__.c.name == bindparam("name"))


@contextmanager
def store_errors() -> Iterator[None]:
    """A lost or refused connection (or a pool that stays exhausted) becomes ``StoreUnavailable``."""
    try:
        yield
    except IntegrityError:
        raise
    except PoolTimeout as exc:
        raise StoreUnavailable(f"the store is busy or unreachable: {type(exc).__name__}") from exc
    except DBAPIError as exc:
        if not _is_unavailable(exc):
            raise
        raise StoreUnavailable(f"the store is unreachable: {type(exc.orig).__name__}") from exc


@dataclass
class NewFace:
    """A face about to be stored."""

    embedding: np.ndarray
    box: list[float] | None = None
    landmarks: list[list[float]] | None = None
    det_score: float | None = None
    source: str | None = None
    crop: bytes | None = None  # encoded aligned crop, stored beside the face (app.crops)


class Repository(ChangeLogReads):
    """Galleries → subjects → faces, plus the change log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @cached_property
    def hot_reads(self) -> HotReads:
        """Plain-SQL reads of the request path (``app/store/hot_reads.py``), one per repository: on SQLite
        its per-thread connections are shared by every reader (keys, trust rows)."""
        from app.store.hot_reads import HotReads

        return HotReads(self.engine)

    @property
    def reads_inline(self) -> bool:
        """Whether async code may read the store on the event loop (``app.services.offload``): SQLite
        answers in-process (WAL: a read never waits for a writer); a database server over a network
        may not answer at once."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success (before the caller answers) and rolls back on error.

        A lost or refused connection becomes ``StoreUnavailable`` (the write was not acknowledged).
        """
        with store_errors(), self._sessions() as session, session.begin():
            yield session

    def max_id(self, table: str) -> int:
        """The largest id the table's id column holds (INTEGER on PostgreSQL: galleries, subjects)."""
        if self.engine.dialect.name == "postgresql" and table in ("galleries", "subjects"):
            return 2**31 - 1
        return 2**63 - 1

    def ping(self) -> None:
        with self.session() as s:
            s.execute(select(1))

    # galleries
    def create_gallery(
        self,
        name: str,
        pack_name: str,
        pack_version: str,
        size: int,
        index_kind: str,
        keep_crops: bool = True,
    ) -> Gallery:
        gallery = Gallery(
            keep_crops=keep_crops,
            name=name,
            pack_name=pack_name,
            pack_version=pack_version,
            embedding_size=size,
            index_kind=index_kind,
        )
        try:
            with self.session() as s:
                s.add(gallery)
                s.flush()
                s.add(Change(gallery_id=gallery.id, kind="gallery_create"))
        except IntegrityError as exc:
            raise DuplicateError(name) from exc
        return gallery

    def get_gallery(self, name: str) -> Gallery | None:
        """The gallery named ``name``, read without the ORM's session (every request reads it; issue 17)."""
        with store_errors(), self.engine.connect() as conn:
            row = conn.execute(_GALLERY_BY_NAME, {"name": name}).first()
        return None if row is None else Gallery(**row._mapping)

    def list_galleries(self) -> list[Gallery]:
        with self.session() as s:
            return list(s.scalars(select(Gallery).order_by(Gallery.id)))

    def delete_gallery(self, gallery_id: int) -> None:
        with self.session() as s:
            s.execute(delete(FaceRecord).where(FaceRecord.gallery_id == gallery_id))
            s.execute(delete(Subject).where(Subject.gallery_id == gallery_id))
            s.execute(delete(Gallery).where(Gallery.id == gallery_id))
            s.add(Change(gallery_id=gallery_id, kind="gallery_delete"))

    def gallery_counts(self, gallery_id: int) -> tuple[int, int]:
        """(subjects, faces) in a gallery."""
        with self.session() as s:
            subjects = s.scalar(select(func.count()).where(Subject.gallery_id == gallery_id))
            faces = s.scalar(select(func.count()).where(FaceRecord.gallery_id == gallery_id))
            return int(subjects or 0), int(faces or 0)

    # subjects
    def create_subject(self, gallery_id: int, name: str, meta: dict[str, Any] | None = None) -> Subject:
        """A new subject; DuplicateError when the name is taken, MissingError when the gallery is gone."""
        subject = Subject(gallery_id=gallery_id, name=name, meta=meta or {})
        try:
            with self.session() as s:
                s.add(subject)
        except IntegrityError as exc:
            if not self._gallery_exists(gallery_id):
                raise MissingError(f"gallery {gallery_id} no longer exists") from exc
            raise DuplicateError(name) from exc
        return subject

    def _gallery_exists(self, gallery_id: int) -> bool:
        with self.session() as s:
            return s.scalar(select(Gallery.id).where(Gallery.id == gallery_id)) is not None

    def get_or_create_subject(self, gallery_id: int, name: str) -> Subject:
        """The subject named ``name``, created when missing (races with other writers included).

        Prefer ``add_faces_named`` to enroll: it never leaves an empty subject behind.
        """
        for _ in range(5):
            found = self.get_subject_by_name(gallery_id, name)
            if found is not None:
                return found
            try:
                return self.create_subject(gallery_id, name)
            except DuplicateError:  # created meanwhile by another writer (and maybe deleted again)
                continue
        raise DuplicateError(name)

    def get_subject(self, gallery_id: int, subject_id: int) -> Subject | None:
        with self.session() as s:
            return s.scalar(select(Subject).where(Subject.gallery_id == gallery_id, Subject.id == subject_id))

    def get_subject_by_name(self, gallery_id: int, name: str) -> Subject | None:
        with self.session() as s:
            return s.scalar(select(Subject).where(Subject.gallery_id == gallery_id, Subject.name == name))

    def list_subjects(self, gallery_id: int, limit: int, after: int = 0) -> tuple[list[Subject], int]:
        """A page of subjects ordered by id (keyset: ids greater than ``after``) and the total count."""
        with self.session() as s:
            rows = s.scalars(
                select(Subject)
                .where(Subject.gallery_id == gallery_id, Subject.id > after)
                .order_by(Subject.id)
                .limit(limit)
            )
            total = s.scalar(select(func.count()).where(Subject.gallery_id == gallery_id))
            return list(rows), int(total or 0)

    def face_counts(self, subject_ids: Sequence[int]) -> dict[int, int]:
        if not subject_ids:
            return {}
        with self.session() as s:
            rows = s.execute(
                select(FaceRecord.subject_id, func.count())
                .where(FaceRecord.subject_id.in_(list(subject_ids)))
                .group_by(FaceRecord.subject_id)
            )
            return {int(sid): int(n) for sid, n in rows}

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        if not subject_ids:
            return {}
        with self.session() as s:
            rows = s.execute(select(Subject.id, Subject.name).where(Subject.id.in_(list(subject_ids))))
            return {int(sid): name for sid, name in rows}

    def update_subject(
        self, gallery_id: int, subject_id: int, name: str | None, meta: dict[str, Any] | None
    ) -> Subject | None:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if name is not None:
            values["name"] = name
        if meta is not None:
            values["meta"] = meta
        try:
            with self.session() as s:
                s.execute(
                    update(Subject)
                    .where(Subject.gallery_id == gallery_id, Subject.id == subject_id)
                    .values(**values)
                )
        except IntegrityError as exc:
            raise DuplicateError(name or "") from exc
        return self.get_subject(gallery_id, subject_id)

    @staticmethod
    def _lock_subject(s: Session, gallery_id: int, subject_id: int) -> bool:
        """Lock the subject row (PostgreSQL: waits for transactions adding faces to it); False if absent.

        SQLite has one writer at a time, so the statements that follow are atomic there anyway.
        """
        found = s.scalar(
            select(Subject.id)
            .where(Subject.gallery_id == gallery_id, Subject.id == subject_id)
            .with_for_update()
        )
        return found is not None

    def delete_subject(self, gallery_id: int, subject_id: int) -> bool:
        """Delete a subject of this gallery and its faces, with a change-log entry; False if absent."""
        with self.session() as s:
            if not self._lock_subject(s, gallery_id, subject_id):
                return False
            s.execute(
                delete(FaceRecord).where(
                    FaceRecord.gallery_id == gallery_id, FaceRecord.subject_id == subject_id
                )
            )
            result = s.execute(
                delete(Subject).where(Subject.gallery_id == gallery_id, Subject.id == subject_id)
            )
            if result.rowcount:
                s.add(Change(gallery_id=gallery_id, kind="subject_delete", subject_id=subject_id))
            return bool(result.rowcount)

    # faces
    def add_faces(self, gallery: Gallery, subject_id: int, faces: Sequence[NewFace]) -> list[int]:
        """Store faces of one subject and their change-log entries in one transaction; returns their ids."""
        return self.add_faces_many(gallery, [(subject_id, f) for f in faces])

    def add_faces_many(self, gallery: Gallery, items: Sequence[tuple[int, NewFace]]) -> list[int]:
        """Store (subject id, face) pairs and their change-log entries in one transaction; face ids.

        MissingError when a subject (or the gallery) was deleted meanwhile: nothing is stored then.
        """
        try:
            with self.session() as s:
                return self._insert_faces(s, gallery, items)
        except IntegrityError as exc:  # the subject (or gallery) was deleted meanwhile: foreign key
            raise MissingError("the subject or gallery was deleted while faces were being added") from exc

    def add_faces_named(
        self, gallery: Gallery, name: str, faces: Sequence[NewFace], attempts: int = 5
    ) -> tuple[Subject, bool, list[int]]:
        """Store faces under the subject named ``name``, created in the same transaction when missing.

        Returns (subject, created, face ids). A subject never exists without the faces that created it,
        and one deleted or created concurrently is simply looked up again.
        """
        for _ in range(attempts):
            try:
                with self.session() as s:
                    subject = s.scalar(
                        select(Subject).where(Subject.gallery_id == gallery.id, Subject.name == name)
                    )
                    created = subject is None
                    if subject is None:
                        subject = Subject(gallery_id=gallery.id, name=name, meta={})
                        s.add(subject)
                        s.flush()
                    ids = self._insert_faces(s, gallery, [(subject.id, f) for f in faces])
                return subject, created, ids
            except IntegrityError:  # a concurrent create of the same name, or a delete: look again
                if not self._gallery_exists(gallery.id):
                    raise MissingError(f"gallery {gallery.name!r} was deleted") from None
        raise MissingError(f"subject {name!r} kept changing under this enrollment; retry")

    @staticmethod
    def _insert_faces(s: Session, gallery: Gallery, items: Sequence[tuple[int, NewFace]]) -> list[int]:
        records = [
            FaceRecord(
                subject_id=subject_id,
                gallery_id=gallery.id,
                embedding=np.ascontiguousarray(f.embedding, dtype=np.float32).tobytes(),
                pack_name=gallery.pack_name,
                pack_version=gallery.pack_version,
                box=f.box,
                landmarks=f.landmarks,
                det_score=f.det_score,
                source=f.source,
            )
            for subject_id, f in items
        ]
        s.add_all(records)
        s.flush()
        s.add_all(
            Change(gallery_id=gallery.id, kind="face_add", subject_id=r.subject_id, face_id=r.id)
            for r in records
        )
        s.add_all(
            FaceCrop(face_id=r.id, gallery_id=gallery.id, media_type=CROP_MEDIA_TYPE, data=f.crop)
            for r, (_, f) in zip(records, items, strict=True)
            if f.crop is not None
        )
        s.flush()
        return [int(r.id) for r in records]

    def list_faces(self, gallery_id: int, subject_id: int, limit: int, after: int = 0) -> list[FaceRecord]:
        with self.session() as s:
            query = (
                select(FaceRecord)
                .where(
                    FaceRecord.gallery_id == gallery_id,
                    FaceRecord.subject_id == subject_id,
                    FaceRecord.id > after,
                )
                .order_by(FaceRecord.id)
                .limit(limit)
            )
            return list(s.scalars(query))

    def delete_face(self, gallery_id: int, face_id: int) -> int | None:
        """Delete one face; returns its subject id, or None when there was no such face."""
        with self.session() as s:
            subject_id = s.scalar(
                select(FaceRecord.subject_id).where(
                    FaceRecord.gallery_id == gallery_id, FaceRecord.id == face_id
                )
            )
            if subject_id is None:
                return None
            gone = s.execute(
                delete(FaceRecord).where(FaceRecord.gallery_id == gallery_id, FaceRecord.id == face_id)
            )
            if not gone.rowcount:  # deleted meanwhile by a concurrent request: that one reports it
                return None
            s.add(Change(gallery_id=gallery_id, kind="face_delete", subject_id=subject_id, face_id=face_id))
            return int(subject_id)

    def iter_embeddings(
        self,
        gallery_id: int,
        *,
        face_ids: Sequence[int] | None = None,
        subject_id: int | None = None,
        chunk: int = 20_000,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks of (face ids, subject ids, N×D float32 embeddings) for rebuilding or syncing an index."""
        after = 0
        while True:
            query = select(FaceRecord.id, FaceRecord.subject_id, FaceRecord.embedding).where(
                FaceRecord.gallery_id == gallery_id, FaceRecord.id > after
            )
            if face_ids is not None:
                query = query.where(FaceRecord.id.in_(list(face_ids)))
            if subject_id is not None:
                query = query.where(FaceRecord.subject_id == subject_id)
            with self.session() as s:
                rows = s.execute(query.order_by(FaceRecord.id).limit(chunk)).all()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            subjects = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
            yield ids, subjects, vectors
            after = int(ids[-1])

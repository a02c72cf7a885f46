"""SQLAlchemy 2 tables of the store: galleries → subjects → faces, API keys and the change log."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC (SQLite hands back naive datetimes; they were written in UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


class Base(DeclarativeBase):
    pass


class Gallery(Base):
    """A searchable set of subjects bound to one model pack (embeddings of packs never mix)."""

    __tablename__ = "galleries"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused (migration 0002)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    pack_name: Mapped[str] = mapped_column(String(128))
    pack_version: Mapped[str] = mapped_column(String(64))
    embedding_size: Mapped[int] = mapped_column(Integer)
    index_kind: Mapped[str] = mapped_column(String(16), default="flat")
    keep_crops: Mapped[bool] = mapped_column(Boolean, default=True)  # issue 13: crops kept (app/crops)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subject(Base):
    """A person in a gallery, with free JSON metadata."""

    __tablename__ = "subjects"
    __table_args__ = (
        UniqueConstraint("gallery_id", "name", name="uq_subject_gallery_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceRecord(Base):
    """One enrolled face: its embedding (float32 bytes) and the pack that made it."""

    __tablename__ = "faces"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    pack_name: Mapped[str] = mapped_column(String(128))
    pack_version: Mapped[str] = mapped_column(String(64))
    box: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON, nullable=True)
    det_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key, stored only as the sha256 of its token."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Change(Base):
    """Change log: every write that affects search, polled by every server process.

    Ids only grow (AUTOINCREMENT / a sequence) and are never reused, even after pruning. On SQLite, id
    order is commit order (one writer at a time); on PostgreSQL a transaction may commit after one with a
    higher id, so readers wait a while for such gaps (``app.search.registry``).
    """

    __tablename__ = "changes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gallery_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    subject_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    face_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoreMeta(Base):
    """Small named counters of the store; ``changes_pruned_through``: the highest change id pruned."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)

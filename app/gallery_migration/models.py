"""Tables of a gallery migration: its state and the new embeddings computed so far (the shadow)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, BigId, utcnow


class GalleryMigration(Base):
    """The last (or running) migration of a gallery: from which pack to which, and how far it got."""

    __tablename__ = "gallery_migrations"

    gallery_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("galleries.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    pack_name: Mapped[str] = mapped_column(String(128))
    pack_version: Mapped[str] = mapped_column(String(64))
    from_pack_name: Mapped[str] = mapped_column(String(128))
    from_pack_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # running | switched | failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ShadowEmbedding(Base):
    """A face's embedding under the target pack, waiting for the switch."""

    __tablename__ = "face_shadow_embeddings"

    face_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    gallery_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    pack_version: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)

"""Tables of the crop store: one aligned crop per face (deleted with it by the foreign key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, BigId, utcnow

CROP_MEDIA_TYPE = "image/png"  # crops are stored lossless (app.crops.service.encode_crop)


class FaceCrop(Base):
    """The aligned crop (encoded image bytes) a face's embedding was computed from."""

    __tablename__ = "face_crops"

    face_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("faces.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    gallery_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("galleries.id", ondelete="CASCADE"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

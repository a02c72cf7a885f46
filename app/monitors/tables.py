"""ORM tables of the monitors: their configuration and the lease that gives each one a single owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow


class Monitor(Base):
    """A camera (or file) watched by the server: where to read, which gallery to search, how."""

    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(1024))
    gallery: Mapped[str] = mapped_column(String(128))
    fps: Mapped[float] = mapped_column(Float, default=5.0)
    min_face: Mapped[int] = mapped_column(Integer, default=40)
    roi: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    absence_s: Mapped[float] = mapped_column(Float, default=30.0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MonitorLease(Base):
    """Who runs a monitor, until when; another process takes the row over once ``expires_at`` passed."""

    __tablename__ = "monitor_leases"

    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

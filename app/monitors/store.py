"""Storage of monitors and their leases (one transaction per call)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.monitors.tables import Monitor, MonitorLease
from app.store.models import utcnow


class MonitorExists(Exception):
    """The monitor name is taken."""


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class MonitorStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, **fields: Any) -> Monitor:
        monitor = Monitor(**fields)
        try:
            with self._sessions() as s, s.begin():
                s.add(monitor)
        except IntegrityError:
            raise MonitorExists(fields.get("name")) from None
        return monitor

    def list(self) -> list[Monitor]:
        with self._sessions() as s:
            return list(s.scalars(select(Monitor).order_by(Monitor.id)))

    def get(self, name: str) -> Monitor | None:
        with self._sessions() as s:
            return s.scalar(select(Monitor).where(Monitor.name == name))

    def delete(self, name: str) -> bool:
        with self._sessions() as s, s.begin():
            monitor = s.scalar(select(Monitor).where(Monitor.name == name))
            if monitor is None:
                return False
            s.execute(delete(MonitorLease).where(MonitorLease.monitor_id == monitor.id))
            s.delete(monitor)
            return True

    def leases(self) -> dict[int, MonitorLease]:
        with self._sessions() as s:
            return {lease.monitor_id: lease for lease in s.scalars(select(MonitorLease))}

    def acquire(self, monitor_id: int, owner: str, ttl_s: float, health: dict[str, Any]) -> bool:
        """Take or renew the lease: succeeds when it is ours, expired or absent (one winner per row)."""
        now = utcnow()
        until = now + timedelta(seconds=ttl_s)
        with self._sessions() as s, s.begin():
            result = s.execute(
                update(MonitorLease)
                .where(
                    MonitorLease.monitor_id == monitor_id,
                    (MonitorLease.owner == owner) | (MonitorLease.expires_at < now),
                )
                .values(owner=owner, expires_at=until, health=health)
            )
            if result.rowcount == 1:
                return True
            exists = s.scalar(select(MonitorLease.monitor_id).where(MonitorLease.monitor_id == monitor_id))
        if exists is not None:
            return False
        try:
            with self._sessions() as s, s.begin():
                if s.get(Monitor, monitor_id) is None:
                    return False
                s.add(MonitorLease(monitor_id=monitor_id, owner=owner, expires_at=until, health=health))
        except IntegrityError:  # another process inserted it first
            return False
        return True

    def release(self, monitor_id: int, owner: str, health: dict[str, Any]) -> None:
        """Give the lease up at once (clean shutdown), so another process need not wait for expiry."""
        with self._sessions() as s, s.begin():
            s.execute(
                update(MonitorLease)
                .where(MonitorLease.monitor_id == monitor_id, MonitorLease.owner == owner)
                .values(expires_at=utcnow() - timedelta(seconds=1), health=health)
            )

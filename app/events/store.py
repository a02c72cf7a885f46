"""Storage of events, unknown clusters, webhooks and deliveries: one transaction per call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import sessionmaker

from app.events.tables import Delivery, Event, UnknownCluster, Webhook
from app.store.models import iso, utcnow


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def event_json(event: Event) -> dict[str, Any]:
    """The public form of an event (API, webhooks, MQTT, SSE); the snapshot is fetched by URL."""
    return {
        "id": event.uid,
        "seq": event.id,
        "monitor": event.monitor,
        "gallery": event.gallery,
        "kind": event.kind,
        "subject": event.subject,
        "subject_id": event.subject_id,
        "similarity": event.similarity,
        "cluster_id": event.cluster_id,
        "first_seen": iso(event.first_seen),
        "last_seen": iso(event.last_seen),
        "details": event.details,
        "snapshot_url": f"/events/{event.uid}/snapshot" if event.snapshot else None,
    }


@dataclass
class NewEvent:
    monitor: str
    gallery: str
    kind: str
    subject_id: int | None
    subject: str | None
    similarity: float | None
    first_seen: datetime
    last_seen: datetime
    details: dict[str, Any]
    snapshot: bytes | None
    embedding: np.ndarray | None


@dataclass
class EventFilter:
    monitor: str | None = None
    subject: str | None = None
    kind: str | None = None
    cluster_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int = 100


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # events
    def add(self, new: NewEvent, cluster_threshold: float | None) -> Event:
        """Store the event, its cluster (unknowns) and a pending delivery per matching webhook, atomically."""
        with self._sessions() as s, s.begin():
            cluster_id = None
            if new.kind == "unknown" and new.embedding is not None and cluster_threshold is not None:
                cluster_id = self._cluster(s, new, cluster_threshold)
            event = Event(
                uid=str(uuid.uuid4()),
                monitor=new.monitor,
                gallery=new.gallery,
                kind=new.kind,
                subject_id=new.subject_id,
                subject=new.subject,
                similarity=new.similarity,
                cluster_id=cluster_id,
                first_seen=new.first_seen,
                last_seen=new.last_seen,
                details=new.details,
                snapshot=new.snapshot,
                embedding=None if new.embedding is None else np.asarray(new.embedding, np.float32).tobytes(),
            )
            s.add(event)
            s.flush()
            hooks = s.scalars(
                select(Webhook.id).where((Webhook.monitor.is_(None)) | (Webhook.monitor == new.monitor))
            )
            now = utcnow()
            for hook_id in hooks:
                s.add(Delivery(event_id=event.id, webhook_id=hook_id, state="pending", attempts=0,
                               next_at=now, updated_at=now))
        return event

    def _cluster(self, s, new: NewEvent, threshold: float) -> int:
        vector = np.asarray(new.embedding, np.float32)
        clusters = list(s.scalars(select(UnknownCluster).where(UnknownCluster.gallery == new.gallery)))
        best, best_sim = None, threshold
        for cluster in clusters:
            centroid = np.frombuffer(cluster.centroid, np.float32)
            sim = float(np.dot(centroid / max(np.linalg.norm(centroid), 1e-9), vector))
            if sim >= best_sim:
                best, best_sim = cluster, sim
        if best is None:
            best = UnknownCluster(gallery=new.gallery, centroid=vector.tobytes(), count=1,
                                  first_seen=new.first_seen, last_seen=new.last_seen)
            s.add(best)
            s.flush()
            return best.id
        centroid = np.frombuffer(best.centroid, np.float32)
        best.centroid = ((centroid * best.count + vector) / (best.count + 1)).astype(np.float32).tobytes()
        best.count += 1
        best.last_seen = new.last_seen
        return best.id

    def touch(self, uid: str, last_seen: datetime) -> None:
        with self._sessions() as s, s.begin():
            s.execute(update(Event).where(Event.uid == uid).values(last_seen=last_seen))

    def get(self, uid: str) -> Event | None:
        with self._sessions() as s:
            return s.scalar(select(Event).where(Event.uid == uid))

    def list(self, f: EventFilter) -> list[Event]:
        q = select(Event)
        if f.monitor:
            q = q.where(Event.monitor == f.monitor)
        if f.subject:
            q = q.where(Event.subject == f.subject)
        if f.kind:
            q = q.where(Event.kind == f.kind)
        if f.cluster_id is not None:
            q = q.where(Event.cluster_id == f.cluster_id)
        if f.since:
            q = q.where(Event.first_seen >= f.since)
        if f.until:
            q = q.where(Event.first_seen < f.until)
        if f.after_seq is not None:
            q = q.where(Event.id > f.after_seq).order_by(Event.id.asc())
        else:
            if f.before_seq is not None:
                q = q.where(Event.id < f.before_seq)
            q = q.order_by(Event.id.desc())
        with self._sessions() as s:
            return list(s.scalars(q.limit(f.limit)))

    def last_seq(self) -> int:
        with self._sessions() as s:
            return int(s.scalar(select(func.max(Event.id))) or 0)

    def delete(self, uid: str) -> bool:
        with self._sessions() as s, s.begin():
            return s.execute(delete(Event).where(Event.uid == uid)).rowcount > 0

    def prune(self, older_than: timedelta, keep: int) -> int:
        """Delete events past the age limit or beyond the newest ``keep``."""
        with self._sessions() as s, s.begin():
            n = s.execute(delete(Event).where(Event.created_at < utcnow() - older_than)).rowcount
            cut = s.scalar(select(Event.id).order_by(Event.id.desc()).offset(keep).limit(1))
            if cut is not None:
                n += s.execute(delete(Event).where(Event.id <= cut)).rowcount
            return n

    # clusters
    def clusters(self, gallery: str | None = None, min_count: int = 1) -> list[UnknownCluster]:
        q = select(UnknownCluster).where(UnknownCluster.count >= min_count)
        if gallery:
            q = q.where(UnknownCluster.gallery == gallery)
        with self._sessions() as s:
            return list(s.scalars(q.order_by(UnknownCluster.count.desc(), UnknownCluster.id)))

    def cluster(self, cluster_id: int) -> UnknownCluster | None:
        with self._sessions() as s:
            return s.get(UnknownCluster, cluster_id)

    def name_cluster(self, cluster_id: int, subject: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(update(UnknownCluster).where(UnknownCluster.id == cluster_id).values(subject=subject))

    # webhooks and deliveries
    def add_webhook(self, url: str, secret: str, monitor: str | None) -> Webhook:
        hook = Webhook(url=url, secret=secret, monitor=monitor)
        with self._sessions() as s, s.begin():
            s.add(hook)
        return hook

    def webhooks(self) -> list[Webhook]:
        with self._sessions() as s:
            return list(s.scalars(select(Webhook).order_by(Webhook.id)))

    def webhook(self, hook_id: int) -> Webhook | None:
        with self._sessions() as s:
            return s.get(Webhook, hook_id)

    def delete_webhook(self, hook_id: int) -> bool:
        with self._sessions() as s, s.begin():
            s.execute(delete(Delivery).where(Delivery.webhook_id == hook_id))
            return s.execute(delete(Webhook).where(Webhook.id == hook_id)).rowcount > 0

    def deliveries(self, state: str | None, webhook_id: int | None, limit: int) -> list[tuple[Delivery, str]]:
        q = select(Delivery, Event.uid).join(Event, Event.id == Delivery.event_id)
        if state:
            q = q.where(Delivery.state == state)
        if webhook_id is not None:
            q = q.where(Delivery.webhook_id == webhook_id)
        with self._sessions() as s:
            return [(d, uid) for d, uid in s.execute(q.order_by(Delivery.id).limit(limit))]

    def claim_due(self, limit: int, hold_s: float) -> list[tuple[Delivery, Event, Webhook]]:
        """Pending deliveries whose time has come, each claimed (its next attempt pushed ``hold_s`` out)
        with a conditional update, so two processes never send the same attempt."""
        now = utcnow()
        out = []
        with self._sessions() as s:
            due = list(s.scalars(
                select(Delivery).where(Delivery.state == "pending", Delivery.next_at <= now)
                .order_by(Delivery.next_at, Delivery.id).limit(limit)
            ))
        for d in due:
            with self._sessions() as s, s.begin():
                won = s.execute(
                    update(Delivery)
                    .where(Delivery.id == d.id, Delivery.state == "pending", Delivery.next_at == d.next_at)
                    .values(next_at=now + timedelta(seconds=hold_s))
                ).rowcount
                if won:
                    event, hook = s.get(Event, d.event_id), s.get(Webhook, d.webhook_id)
                    if event is not None and hook is not None:
                        out.append((d, event, hook))
        return out

    def finish(self, delivery_id: int, ok: bool, error: str | None, retry_at: datetime | None) -> None:
        """Record an attempt: delivered, retried at ``retry_at``, or dead (no ``retry_at``)."""
        state = "delivered" if ok else ("pending" if retry_at else "dead")
        values: dict[str, Any] = {"state": state, "attempts": Delivery.attempts + 1, "updated_at": utcnow(),
                                  "last_error": None if ok else (error or "")[:500]}
        if retry_at:
            values["next_at"] = retry_at
        with self._sessions() as s, s.begin():
            s.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def retry(self, delivery_id: int) -> bool:
        with self._sessions() as s, s.begin():
            return s.execute(
                update(Delivery).where(Delivery.id == delivery_id, Delivery.state == "dead")
                .values(state="pending", next_at=utcnow(), attempts=0)
            ).rowcount > 0

    def next_due(self) -> datetime | None:
        with self._sessions() as s:
            at = s.scalar(select(func.min(Delivery.next_at)).where(Delivery.state == "pending"))
        return aware(at) if at else None

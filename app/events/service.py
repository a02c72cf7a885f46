"""Events: record (with their pending deliveries, atomically), notify, list, cluster and enroll unknowns."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import numpy as np

from app.events.errors import Invalid, NotFound
from app.events.hub import EventHub
from app.events.store import EventFilter, EventStore, NewEvent, event_json
from app.events.tables import Event
from app.monitors.settings import MonitorSettings
from app.store.models import iso
from app.store.repository import NewFace

log = logging.getLogger("marginface.events")

ENROLL_MAX_FACES = 10


def webhook_json(hook, with_secret: bool = False) -> dict[str, Any]:
    body = {"id": hook.id, "url": hook.url, "monitor": hook.monitor, "created_at": iso(hook.created_at)}
    if with_secret:
        body["secret"] = hook.secret
    return body


class EventService:
    def __init__(self, store: EventStore, hub: EventHub, settings: MonitorSettings, galleries) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.galleries = galleries
        self.on_recorded: list = []  # callbacks (e.g. wake the webhook deliverer)
        self.recorded = 0

    async def record(self, new: NewEvent, cluster_threshold: float | None) -> dict[str, Any]:
        """Persist first (with its deliveries), then tell in-process consumers."""
        event = await asyncio.to_thread(self.store.add, new, cluster_threshold)
        body = event_json(event)
        self.recorded += 1
        self.hub.publish(body)
        for callback in self.on_recorded:
            callback()
        return body

    def list(self, f: EventFilter) -> list[dict[str, Any]]:
        return [event_json(e) for e in self.store.list(f)]

    def get(self, uid: str) -> Event:
        event = self.store.get(uid)
        if event is None:
            raise NotFound("event_not_found", f"event {uid!r} does not exist")
        return event

    def delete(self, uid: str) -> None:
        if not self.store.delete(uid):
            raise NotFound("event_not_found", f"event {uid!r} does not exist")

    def prune(self) -> int:
        return self.store.prune(
            timedelta(days=self.settings.event_retention_days), self.settings.event_retention_count
        )

    # clusters of unknowns
    def clusters(self, gallery: str | None, min_count: int) -> list[dict[str, Any]]:
        out = []
        for c in self.store.clusters(gallery, min_count):
            events = self.store.list(EventFilter(cluster_id=c.id, limit=5))
            out.append({
                "id": c.id, "gallery": c.gallery, "count": c.count, "subject": c.subject,
                "first_seen": iso(c.first_seen), "last_seen": iso(c.last_seen),
                "events": [e.uid for e in events],
                "snapshot_url": next((f"/events/{e.uid}/snapshot" for e in events if e.snapshot), None),
            })
        return out

    async def enroll_cluster(self, cluster_id: int, name: str) -> dict[str, Any]:
        """Create (or reuse) subject ``name`` in the cluster's gallery and enroll the cluster's faces."""
        name = name.strip()
        if not name:
            raise Invalid("invalid_request", "name: must not be empty")
        cluster = await asyncio.to_thread(self.store.cluster, cluster_id)
        if cluster is None:
            raise NotFound("cluster_not_found", f"cluster {cluster_id} does not exist")
        events = await asyncio.to_thread(
            self.store.list, EventFilter(cluster_id=cluster_id, limit=ENROLL_MAX_FACES)
        )
        events = [e for e in events if e.embedding]
        if not events:
            raise Invalid("cluster_empty", f"cluster {cluster_id} has no stored faces left (retention)")
        gallery = await asyncio.to_thread(self.galleries.get, cluster.gallery)
        vectors = np.stack([np.frombuffer(e.embedding, np.float32) for e in events])
        if vectors.shape[1] != gallery.embedding_size:
            raise Invalid("embedding_mismatch", "the cluster's faces were embedded by another pack")
        repo, indexes = self.galleries.repo, self.galleries.indexes
        subject = await asyncio.to_thread(repo.get_or_create_subject, gallery.id, name)
        faces = [
            NewFace(embedding=v, det_score=e.details.get("det_score"), source=f"event:{e.uid}")
            for v, e in zip(vectors, events, strict=True)
        ]
        face_ids = await asyncio.to_thread(repo.add_faces, gallery, subject.id, faces)
        await asyncio.to_thread(indexes.add_local, gallery, face_ids, subject.id, vectors)
        await asyncio.to_thread(self.store.name_cluster, cluster_id, name)
        return {"cluster": cluster_id, "gallery": gallery.name, "subject": {"id": subject.id, "name": name},
                "face_ids": face_ids}

    # webhooks
    def add_webhook(self, url: str, secret: str | None, monitor: str | None) -> dict[str, Any]:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise Invalid("invalid_webhook_url", f"url: must be an http(s) URL, got {url!r}")
        hook = self.store.add_webhook(url, secret or secrets.token_urlsafe(24), monitor)
        return webhook_json(hook, with_secret=True)

    def delete_webhook(self, hook_id: int) -> None:
        if not self.store.delete_webhook(hook_id):
            raise NotFound("webhook_not_found", f"webhook {hook_id} does not exist")

    def deliveries(self, state: str | None, webhook_id: int | None, limit: int) -> list[dict[str, Any]]:
        return [
            {"id": d.id, "event": uid, "webhook": d.webhook_id, "state": d.state, "attempts": d.attempts,
             "next_at": iso(d.next_at), "last_error": d.last_error, "updated_at": iso(d.updated_at)}
            for d, uid in self.store.deliveries(state, webhook_id, limit)
        ]

    def retry(self, delivery_id: int) -> None:
        if not self.store.retry(delivery_id):
            raise NotFound("delivery_not_found", f"no dead delivery {delivery_id}")
        for callback in self.on_recorded:
            callback()

"""/events (list, filter, snapshots, server-sent stream), /events/clusters (name and enroll unknowns),
/webhooks (admin: subscriptions, deliveries, dead letters)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.auth import AdminKey, AnyKey
from app.events.errors import http_errors
from app.events.store import EventFilter, event_json

router = APIRouter(tags=["events"])

HEARTBEAT_S = 15.0


def _rt(request: Request):
    return request.app.state.cameras


@router.get("/events", dependencies=[AnyKey])
async def list_events(
    request: Request,
    monitor: str | None = None,
    subject: str | None = None,
    kind: Literal["recognized", "unknown"] | None = None,
    cluster: int | None = None,
    since: datetime | None = Query(default=None, description="first seen at or after (ISO 8601)"),  # noqa: B008
    until: datetime | None = Query(default=None, description="first seen before (ISO 8601)"),  # noqa: B008
    after: int | None = Query(default=None, ge=0, description="seq: oldest first, after this one"),
    before: int | None = Query(default=None, ge=1, description="seq: newest first, before this one"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Newest first (or oldest first with ``after``); page with ``before``/``after`` = a ``seq``."""
    f = EventFilter(monitor, subject, kind, cluster, since, until, after, before, limit)
    return {"events": await asyncio.to_thread(_rt(request).events.list, f)}


async def _stream(request: Request, f: EventFilter, cursor: int) -> AsyncIterator[bytes]:
    """Events after ``cursor`` from the store (so events of monitors run by other processes arrive too),
    woken at once by events recorded in this process, else polled every second."""
    rt = _rt(request)
    sub = rt.hub.subscribe(16)
    idle = 0.0
    try:
        yield b"retry: 1000\n\n"
        while not await request.is_disconnected():
            f.after_seq = cursor
            events = await asyncio.to_thread(rt.event_store.list, f)
            for event in events:
                cursor = event.id
                body = json.dumps(event_json(event))
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {body}\n\n".encode()
            if events:
                idle = 0.0
                continue
            while not sub.queue.empty():
                sub.queue.get_nowait()
            try:
                await asyncio.wait_for(sub.get(), 1.0)
            except asyncio.TimeoutError:
                idle += 1.0
                if idle >= HEARTBEAT_S:
                    idle = 0.0
                    yield b": keep-alive\n\n"
    finally:
        sub.close()


@router.get("/events/stream", dependencies=[AnyKey])
async def stream_events(
    request: Request,
    monitor: str | None = None,
    kind: Literal["recognized", "unknown"] | None = None,
    after: int | None = Query(default=None, ge=0, description="replay events after this seq"),
) -> StreamingResponse:
    """Server-sent events (``id`` = seq; reconnecting clients resume with ``Last-Event-ID``)."""
    last = request.headers.get("last-event-id")
    if after is None and last and last.isdigit():
        after = int(last)
    if after is None:
        after = await asyncio.to_thread(_rt(request).event_store.last_seq)
    f = EventFilter(monitor=monitor, kind=kind, limit=200)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, f, after), media_type="text/event-stream", headers=headers)


@router.get("/events/clusters", dependencies=[AnyKey])
async def list_clusters(
    request: Request, gallery: str | None = None, min_count: int = Query(default=2, ge=1)
) -> dict[str, Any]:
    """Unknown faces that recur (at least ``min_count`` appearances), most frequent first."""
    return {"clusters": await asyncio.to_thread(_rt(request).events.clusters, gallery, min_count)}


class ClusterEnroll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)


@router.post("/events/clusters/{cluster_id}/enroll", status_code=201, dependencies=[AdminKey])
async def enroll_cluster(cluster_id: int, body: ClusterEnroll, request: Request) -> dict[str, Any]:
    """Name a cluster once: its faces are enrolled as subject ``name`` in the cluster's gallery."""
    with http_errors():
        return await _rt(request).events.enroll_cluster(cluster_id, body.name)


@router.get("/events/{event_id}", dependencies=[AnyKey])
async def get_event(event_id: str, request: Request) -> dict[str, Any]:
    with http_errors():
        return event_json(await asyncio.to_thread(_rt(request).events.get, event_id))


@router.get("/events/{event_id}/snapshot", dependencies=[AnyKey])
async def get_snapshot(event_id: str, request: Request) -> Response:
    """The best face crop of the appearance (JPEG)."""
    with http_errors():
        event = await asyncio.to_thread(_rt(request).events.get, event_id)
    if not event.snapshot:
        from app.errors import ApiError

        raise ApiError(404, "snapshot_not_found", f"event {event_id!r} has no snapshot")
    return Response(event.snapshot, media_type="image/jpeg")


@router.delete("/events/{event_id}", dependencies=[AdminKey])
async def delete_event(event_id: str, request: Request) -> dict[str, Any]:
    with http_errors():
        await asyncio.to_thread(_rt(request).events.delete, event_id)
    return {"deleted": event_id}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2048)
    secret: str | None = Field(default=None, min_length=16, max_length=256, description="default: generated")
    monitor: str | None = Field(default=None, description="only this monitor's events (default: all)")


@router.post("/webhooks", status_code=201, dependencies=[AdminKey])
async def create_webhook(body: WebhookCreate, request: Request) -> dict[str, Any]:
    """Subscribe a URL; the answer shows the signing secret (once)."""
    with http_errors():
        return await asyncio.to_thread(_rt(request).events.add_webhook, body.url, body.secret, body.monitor)


@router.get("/webhooks", dependencies=[AdminKey])
async def list_webhooks(request: Request) -> dict[str, Any]:
    from app.events.service import webhook_json

    hooks = await asyncio.to_thread(_rt(request).event_store.webhooks)
    return {"webhooks": [webhook_json(h) for h in hooks]}


@router.delete("/webhooks/{hook_id}", dependencies=[AdminKey])
async def delete_webhook(hook_id: int, request: Request) -> dict[str, Any]:
    with http_errors():
        await asyncio.to_thread(_rt(request).events.delete_webhook, hook_id)
    return {"deleted": hook_id}


@router.get("/webhooks/deliveries", dependencies=[AdminKey])
async def list_deliveries(
    request: Request,
    state: Literal["pending", "delivered", "dead"] | None = None,
    webhook: int | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Deliveries by state; ``state=dead`` is the dead-letter list."""
    return {"deliveries": await asyncio.to_thread(_rt(request).events.deliveries, state, webhook, limit)}


@router.post("/webhooks/deliveries/{delivery_id}/retry", dependencies=[AdminKey])
async def retry_delivery(delivery_id: int, request: Request) -> dict[str, Any]:
    """Send a dead delivery again (its attempts start over)."""
    with http_errors():
        await asyncio.to_thread(_rt(request).events.retry, delivery_id)
    return {"retrying": delivery_id}

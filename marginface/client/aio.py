"""``AsyncClient``: the asyncio client (httpx.AsyncClient underneath); same methods as ``Client``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from marginface.client import endpoints as ep
from marginface.client._bind import async_endpoint
from marginface.client._core import Call, RetryPolicy, T, auth_headers, decode
from marginface.client.errors import ConnectionFailed


class AsyncClient:
    """``async with AsyncClient(url, api_key=...) as mf: await mf.identify("door.jpg", "staff")``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=auth_headers(api_key), timeout=timeout, transport=transport
        )

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(call.method, call.path, **call.request_kwargs())
            except httpx.TransportError as exc:
                if not self.retry.should_retry(attempt, None):
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc}") from exc
            if response is not None and not self.retry.should_retry(attempt, response):
                return decode(call, response)
            await asyncio.sleep(self.retry.wait_s(attempt, response))
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    health = async_endpoint(ep.health)
    ready = async_endpoint(ep.ready)
    metrics = async_endpoint(ep.metrics)
    create_gallery = async_endpoint(ep.create_gallery)
    list_galleries = async_endpoint(ep.list_galleries)
    get_gallery = async_endpoint(ep.get_gallery)
    delete_gallery = async_endpoint(ep.delete_gallery)
    create_subject = async_endpoint(ep.create_subject)
    list_subjects = async_endpoint(ep.list_subjects)
    get_subject = async_endpoint(ep.get_subject)
    update_subject = async_endpoint(ep.update_subject)
    delete_subject = async_endpoint(ep.delete_subject)
    enroll = async_endpoint(ep.enroll)
    add_faces = async_endpoint(ep.add_faces)
    list_faces = async_endpoint(ep.list_faces)
    delete_face = async_endpoint(ep.delete_face)
    face_crop = async_endpoint(ep.face_crop)
    detect = async_endpoint(ep.detect)
    identify = async_endpoint(ep.identify)
    verify = async_endpoint(ep.verify)
    whoami = async_endpoint(ep.whoami)
    list_keys = async_endpoint(ep.list_keys)
    create_key = async_endpoint(ep.create_key)
    revoke_key = async_endpoint(ep.revoke_key)
    calibrate = async_endpoint(ep.calibrate)
    get_policy = async_endpoint(ep.get_policy)
    set_policy = async_endpoint(ep.set_policy)
    migrate_gallery = async_endpoint(ep.migrate_gallery)
    create_monitor = async_endpoint(ep.create_monitor)
    list_monitors = async_endpoint(ep.list_monitors)
    get_monitor = async_endpoint(ep.get_monitor)
    delete_monitor = async_endpoint(ep.delete_monitor)
    list_events = async_endpoint(ep.list_events)
    get_event = async_endpoint(ep.get_event)
    event_snapshot = async_endpoint(ep.event_snapshot)
    delete_event = async_endpoint(ep.delete_event)
    list_clusters = async_endpoint(ep.list_clusters)
    enroll_cluster = async_endpoint(ep.enroll_cluster)
    create_webhook = async_endpoint(ep.create_webhook)
    list_webhooks = async_endpoint(ep.list_webhooks)
    delete_webhook = async_endpoint(ep.delete_webhook)
    request = async_endpoint(ep.request)

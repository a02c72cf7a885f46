"""``Client``: the blocking client (httpx.Client underneath)."""

from __future__ import annotations

from typing import Any

import httpx

from marginface.client import endpoints as ep
from marginface.client._bind import sync_endpoint
from marginface.client._core import Call, RetryPolicy, T, auth_headers, decode, sleep
from marginface.client.errors import ConnectionFailed


class Client:
    """A MarginFace server at ``base_url``. The API key defaults to ``$MARGINFACE_KEY``.

    >>> with Client("http://localhost:8000", api_key="mf_...") as mf:
    ...     mf.create_gallery("staff")
    ...     mf.enroll("staff", "alice", "alice.jpg")
    ...     mf.identify("door.jpg", "staff")["faces"]
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=auth_headers(api_key), timeout=timeout, transport=transport
        )

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.request(call.method, call.path, **call.request_kwargs())
            except httpx.TransportError as exc:
                if not self.retry.should_retry(attempt, None):
                    raise ConnectionFailed(f"{call.method} {call.path}: {exc}") from exc
            if response is not None and not self.retry.should_retry(attempt, response):
                return decode(call, response)
            sleep(self.retry.wait_s(attempt, response))
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    health = sync_endpoint(ep.health)
    ready = sync_endpoint(ep.ready)
    metrics = sync_endpoint(ep.metrics)
    create_gallery = sync_endpoint(ep.create_gallery)
    list_galleries = sync_endpoint(ep.list_galleries)
    get_gallery = sync_endpoint(ep.get_gallery)
    delete_gallery = sync_endpoint(ep.delete_gallery)
    create_subject = sync_endpoint(ep.create_subject)
    list_subjects = sync_endpoint(ep.list_subjects)
    get_subject = sync_endpoint(ep.get_subject)
    update_subject = sync_endpoint(ep.update_subject)
    delete_subject = sync_endpoint(ep.delete_subject)
    enroll = sync_endpoint(ep.enroll)
    add_faces = sync_endpoint(ep.add_faces)
    list_faces = sync_endpoint(ep.list_faces)
    delete_face = sync_endpoint(ep.delete_face)
    face_crop = sync_endpoint(ep.face_crop)
    detect = sync_endpoint(ep.detect)
    identify = sync_endpoint(ep.identify)
    verify = sync_endpoint(ep.verify)
    whoami = sync_endpoint(ep.whoami)
    list_keys = sync_endpoint(ep.list_keys)
    create_key = sync_endpoint(ep.create_key)
    revoke_key = sync_endpoint(ep.revoke_key)
    calibrate = sync_endpoint(ep.calibrate)
    get_policy = sync_endpoint(ep.get_policy)
    set_policy = sync_endpoint(ep.set_policy)
    migrate_gallery = sync_endpoint(ep.migrate_gallery)
    create_monitor = sync_endpoint(ep.create_monitor)
    list_monitors = sync_endpoint(ep.list_monitors)
    get_monitor = sync_endpoint(ep.get_monitor)
    delete_monitor = sync_endpoint(ep.delete_monitor)
    list_events = sync_endpoint(ep.list_events)
    get_event = sync_endpoint(ep.get_event)
    event_snapshot = sync_endpoint(ep.event_snapshot)
    delete_event = sync_endpoint(ep.delete_event)
    list_clusters = sync_endpoint(ep.list_clusters)
    enroll_cluster = sync_endpoint(ep.enroll_cluster)
    create_webhook = sync_endpoint(ep.create_webhook)
    list_webhooks = sync_endpoint(ep.list_webhooks)
    delete_webhook = sync_endpoint(ep.delete_webhook)
    request = sync_endpoint(ep.request)

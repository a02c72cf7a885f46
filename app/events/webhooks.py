"""Webhook delivery: signed JSON POSTs, retried with exponential backoff and jitter, persisted in the store.

At least once: a delivery is marked delivered only after a 2xx; a process killed mid-attempt leaves it
pending, and its claim expires, so it is sent again (receivers deduplicate by the event ``id``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from datetime import timedelta

import httpx

from app.events.store import EventStore, event_json
from app.monitors.settings import MonitorSettings
from app.services.backoff import LoopHealth
from app.store.models import utcnow

log = logging.getLogger("marginface.events")

SIGNATURE_HEADER = "X-MarginFace-Signature"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def backoff_s(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): base·2^(n-1), capped, with ±25 % jitter."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay * (0.75 + 0.5 * random.random())


class WebhookDeliverer:
    """Polls the store for due deliveries (woken early when an event is recorded here) and sends them."""

    def __init__(self, store: EventStore, settings: MonitorSettings, metrics=None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="webhook-deliverer")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        hold = self.settings.webhook_timeout_s + 5
        poll = self.settings.webhook_poll_s
        health = LoopHealth(log, "webhook delivery", poll, max(poll, 30.0))
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_s) as client:
            while True:
                try:
                    batch = await asyncio.to_thread(self.store.claim_due, 32, hold)
                    delay = health.ok()
                    if batch:
                        await asyncio.gather(*(self._send(client, *item) for item in batch))
                        continue
                except Exception as exc:  # noqa: BLE001 - a store outage must not end delivery
                    delay = health.failed(exc)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    async def _send(self, client: httpx.AsyncClient, delivery, event, hook) -> None:
        body = json.dumps({"type": "event", "event": event_json(event)}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(hook.secret, body),
            "X-MarginFace-Event-Id": event.uid,
            "X-MarginFace-Delivery": str(delivery.id),
        }
        error = None
        try:
            response = await client.post(hook.url, content=body, headers=headers)
            if 200 <= response.status_code < 300:
                self.sent += 1
                await asyncio.to_thread(self.store.finish, delivery.id, True, None, None)
                return
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.failed += 1
        attempt = delivery.attempts + 1
        retry_at = None
        if attempt < self.settings.webhook_max_attempts:
            delay = backoff_s(attempt, self.settings.webhook_backoff_s, self.settings.webhook_backoff_max_s)
            retry_at = utcnow() + timedelta(seconds=delay)
        else:
            log.warning("webhook %s: event %s dead after %d tries: %s", hook.url, event.uid, attempt, error)
        await asyncio.to_thread(self.store.finish, delivery.id, False, error, retry_at)

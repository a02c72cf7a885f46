"""Local fan-out of new events to in-process consumers (MQTT, server-sent events), with bounded queues."""

from __future__ import annotations

import asyncio
from typing import Any


class Subscription:
    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self.hub = hub
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.overflowed = False

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub._subs.discard(self)


class EventHub:
    """``publish`` never blocks and never drops silently: a subscriber whose queue is full is marked
    ``overflowed`` and must catch up from the store (SSE resumes with Last-Event-ID)."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, event: dict[str, Any]) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True

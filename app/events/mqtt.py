"""MQTT delivery (aiomqtt): events, the retained last person per monitor, Home Assistant discovery.

Topics (prefix ``marginface`` by default): ``<prefix>/<monitor>/event`` (QoS 1), ``<prefix>/<monitor>/person``
(retained), ``<prefix>/status`` (``online``/``offline``, retained, offline as the last will), and
``<discovery>/sensor/marginface_<monitor>/person/config`` (retained) so Home Assistant shows a sensor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any
from urllib.parse import urlparse

from app.events.hub import EventHub
from app.monitors.settings import MonitorSettings

log = logging.getLogger("marginface.events")


def discovery_config(monitor: str, prefix: str) -> dict[str, Any]:
    """The Home Assistant MQTT sensor config of a monitor (keys per HA's MQTT sensor documentation)."""
    return {
        "name": "Person",
        "unique_id": f"marginface_{monitor}_person",
        "object_id": f"marginface_{monitor}_person",
        "state_topic": f"{prefix}/{monitor}/person",
        "value_template": "{{ value_json.name }}",
        "json_attributes_topic": f"{prefix}/{monitor}/person",
        "availability_topic": f"{prefix}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "icon": "mdi:face-recognition",
        "device": {
            "identifiers": [f"marginface_{monitor}"],
            "name": f"MarginFace {monitor}",
            "manufacturer": "MarginFace",
            "model": "camera monitor",
        },
    }


def person_state(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": event["subject"] if event["kind"] == "recognized" else "unknown",
        "kind": event["kind"],
        "similarity": event["similarity"],
        "event_id": event["id"],
        "at": event["first_seen"],
    }


class MqttPublisher:
    """One connection, re-established with exponential backoff; events wait in a bounded queue meanwhile."""

    def __init__(self, settings: MonitorSettings, hub: EventHub, queue_size: int = 10_000) -> None:
        self.settings = settings
        url = urlparse(settings.mqtt_url or "mqtt://127.0.0.1:1883")
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 1883
        self.prefix = settings.mqtt_prefix.rstrip("/")
        self.sub = hub.subscribe(queue_size)
        self.monitors: set[str] = set()
        self.connected = False
        self.published = 0
        self.last_error: str | None = None
        self._control: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-publisher")

    async def stop(self) -> None:
        self.sub.close()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def announce(self, monitor: str) -> None:
        self.monitors.add(monitor)
        self._control.put_nowait(("announce", monitor))

    def forget(self, monitor: str) -> None:
        self.monitors.discard(monitor)
        self._control.put_nowait(("forget", monitor))

    def _discovery_topic(self, monitor: str) -> str | None:
        disc = self.settings.mqtt_discovery_prefix.strip("/")
        return f"{disc}/sensor/marginface_{monitor}/person/config" if disc else None

    async def _run(self) -> None:
        import aiomqtt

        delay = 0.5
        pending: dict[str, Any] | None = None
        while True:
            will = aiomqtt.Will(f"{self.prefix}/status", "offline", qos=1, retain=True)
            try:
                async with aiomqtt.Client(
                    self.host, self.port, username=self.settings.mqtt_username,
                    password=self.settings.mqtt_password, will=will, timeout=10,
                ) as client:
                    self.connected, delay = True, 0.5
                    await client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
                    for monitor in sorted(self.monitors):
                        await self._announce(client, monitor)
                    while True:
                        if pending is None:
                            pending = await self._next(client)
                        if pending is not None:
                            await self._publish_event(client, pending)
                            pending = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any broker failure: reconnect
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                wait = delay * (0.75 + 0.5 * random.random())
                log.info("mqtt %s:%d: %s; retry in %.1f s", self.host, self.port, self.last_error, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, 30.0)

    async def _next(self, client) -> dict[str, Any] | None:
        """The next event to publish, after any pending announce/forget control messages."""
        get_event = asyncio.ensure_future(self.sub.get())
        get_control = asyncio.ensure_future(self._control.get())
        done, pending = await asyncio.wait({get_event, get_control}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:  # cancelled before any other await: a queued item stays queued
            task.cancel()
        if get_control in done:
            action, monitor = get_control.result()
            if action == "announce":
                await self._announce(client, monitor)
            else:
                topic = self._discovery_topic(monitor)
                if topic:
                    await client.publish(topic, b"", qos=1, retain=True)
                await client.publish(f"{self.prefix}/{monitor}/person", b"", qos=1, retain=True)
        return get_event.result() if get_event in done else None

    async def _announce(self, client, monitor: str) -> None:
        topic = self._discovery_topic(monitor)
        if topic:
            config = discovery_config(monitor, self.prefix)
            await client.publish(topic, json.dumps(config), qos=1, retain=True)

    async def _publish_event(self, client, event: dict[str, Any]) -> None:
        monitor = event["monitor"]
        await client.publish(f"{self.prefix}/{monitor}/event", json.dumps(event), qos=1)
        await client.publish(f"{self.prefix}/{monitor}/person", json.dumps(person_state(event)), qos=1,
                             retain=True)
        self.published += 1

"""The cameras runtime of one server process: lease loop over the stored monitors, their workers,
event retention, webhook delivery and MQTT. Started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.events.hub import EventHub
from app.events.mqtt import MqttPublisher
from app.events.service import EventService
from app.events.store import EventStore
from app.events.webhooks import WebhookDeliverer
from app.monitors.service import MonitorService
from app.monitors.settings import MonitorSettings
from app.monitors.store import MonitorStore
from app.monitors.worker import MonitorWorker
from app.services.backoff import LoopHealth

log = logging.getLogger("marginface.monitors")

RETENTION_EVERY_S = 60.0


class CamerasRuntime:
    def __init__(self, ctx, settings: MonitorSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or MonitorSettings()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.monitor_store = MonitorStore(ctx.db)
        self.event_store = EventStore(ctx.db)
        self.hub = EventHub()
        self.events = EventService(self.event_store, self.hub, self.settings, ctx.galleries)
        self.deliverer = WebhookDeliverer(self.event_store, self.settings)
        self.events.on_recorded.append(self.deliverer.wake)
        self.mqtt = MqttPublisher(self.settings, self.hub) if self.settings.mqtt_url else None
        self.monitors = MonitorService(self.monitor_store, self.settings, self)
        self.workers: dict[int, MonitorWorker] = {}
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        ctx.metrics.registry.register(_MonitorMetrics(self))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.deliverer.start()
        if self.mqtt:
            self.mqtt.start()
        self._tasks.append(loop.create_task(self._retention_loop(), name="event-retention"))
        if self.settings.monitors:
            self._tasks.append(loop.create_task(self._lease_loop(), name="monitor-leases"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for monitor_id, worker in list(self.workers.items()):
            await worker.stop()
            await asyncio.to_thread(self.monitor_store.release, monitor_id, self.owner, worker.health())
        self.workers.clear()
        await self.deliverer.stop()
        if self.mqtt:
            await self.mqtt.stop()

    def poke(self) -> None:
        """Run a lease round now (a monitor was created or deleted here)."""
        self._wake.set()

    async def _lease_loop(self) -> None:
        period = self.settings.monitor_lease_s / 3
        health = LoopHealth(log, "monitor leases", period, period)
        while True:
            try:
                await self._lease_round()
                health.ok()
            except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
                health.failed(exc)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), period)
            except asyncio.TimeoutError:
                pass

    async def _lease_round(self) -> None:
        monitors = {m.id: m for m in await asyncio.to_thread(self.monitor_store.list)}
        for monitor_id in [i for i in self.workers if i not in monitors]:
            worker = self.workers.pop(monitor_id)
            await worker.stop()
            if self.mqtt:
                self.mqtt.forget(worker.monitor.name)
        for monitor_id, monitor in monitors.items():
            worker = self.workers.get(monitor_id)
            health = worker.health() if worker else {"state": "starting"}
            won = await asyncio.to_thread(
                self.monitor_store.acquire, monitor_id, self.owner, self.settings.monitor_lease_s, health
            )
            if won and worker is None:
                worker = MonitorWorker(monitor, self.ctx, self.events, self.settings)
                self.workers[monitor_id] = worker
                worker.start()
                if self.mqtt:
                    self.mqtt.announce(monitor.name)
                log.info("monitor %s started here (%s)", monitor.name, self.owner)
            elif not won and worker is not None:
                log.warning("monitor %s: lease lost to another process; stopping here", monitor.name)
                await self.workers.pop(monitor_id).stop()

    async def _retention_loop(self) -> None:
        health = LoopHealth(log, "event retention", RETENTION_EVERY_S, RETENTION_EVERY_S)
        while True:
            try:
                removed = await asyncio.to_thread(self.events.prune)
                health.ok()
                if removed:
                    log.info("event retention: %d events removed", removed)
            except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
                health.failed(exc)
            await asyncio.sleep(RETENTION_EVERY_S)

    def local_health(self) -> dict[str, dict[str, Any]]:
        return {w.monitor.name: w.health() for w in self.workers.values()}


class _MonitorMetrics(Collector):
    """Per-monitor health of the monitors this process runs, read at scrape time."""

    def __init__(self, runtime: CamerasRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable:
        fps = GaugeMetricFamily("marginface_monitor_fps", "Frames processed per second", labels=["monitor"])
        up = GaugeMetricFamily("marginface_monitor_up", "1 when the source is delivering frames",
                               labels=["monitor", "state"])
        processed = CounterMetricFamily("marginface_monitor_frames_processed", "Frames processed",
                                        labels=["monitor"])
        dropped = CounterMetricFamily("marginface_monitor_frames_dropped", "Frames dropped under overload",
                                      labels=["monitor"])
        events = CounterMetricFamily("marginface_monitor_events", "Events emitted", labels=["monitor"])
        for name, h in self.runtime.local_health().items():
            fps.add_metric([name], h["fps"])
            up.add_metric([name, h["state"]], 1.0 if h["state"] == "running" else 0.0)
            processed.add_metric([name], h["frames_processed"])
            dropped.add_metric([name], h["frames_dropped"])
            events.add_metric([name], h["events"])
        delivered = CounterMetricFamily("marginface_webhook_attempts", "Webhook attempts", labels=["outcome"])
        delivered.add_metric(["ok"], self.runtime.deliverer.sent)
        delivered.add_metric(["failed"], self.runtime.deliverer.failed)
        yield from (fps, up, processed, dropped, events, delivered)

"""Monitors: validated create/list/get/delete; health from this process or from the owner's lease row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from app.events.errors import Conflict, Invalid, NotFound
from app.monitors.settings import MonitorSettings
from app.monitors.source import source_kind
from app.monitors.store import MonitorExists, MonitorStore, aware
from app.monitors.tables import Monitor
from app.monitors.worker import blank_health
from app.store.models import iso, utcnow

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def redact(source: str) -> str:
    """The source URL without its password (cameras put credentials in RTSP URLs)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", source)


class MonitorService:
    def __init__(self, store: MonitorStore, settings: MonitorSettings, runtime) -> None:
        self.store = store
        self.settings = settings
        self.runtime = runtime

    def check_source(self, source: str) -> str:
        kind = source_kind(source)
        if kind == "file":
            path = Path(source.removeprefix("file://")).expanduser()
            try:
                path = path.resolve(strict=True)
            except OSError:
                raise Invalid("source_not_found", f"source: no such file {source!r}") from None
            allowed = [Path(d).expanduser().resolve() for d in self.settings.monitor_file_dirs]
            if not any(path.is_relative_to(d) for d in allowed):
                raise Invalid(
                    "source_not_allowed",
                    "source: files must lie under a folder of MARGINFACE_MONITOR_FILE_DIRS "
                    f"({', '.join(map(str, allowed)) or 'none is set'})",
                )
            return str(path)
        if kind == "v4l2" and not re.fullmatch(r"(v4l2://)?/dev/video\d+", source):
            raise Invalid("invalid_source", f"source: not a V4L2 device path: {source!r}")
        return source

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        if not NAME_RE.match(name):
            raise Invalid("invalid_request", "name: lowercase letters, digits, '-' and '_' (at most 64)")
        roi = body.get("roi")
        if roi is not None:
            x, y, w, h = roi
            if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
                raise Invalid("invalid_request", "roi: [x, y, w, h] as fractions of the frame, inside it")
        source = self.check_source(body["source"])
        self.runtime.ctx.galleries.get(body["gallery"])  # 404 gallery_not_found
        try:
            monitor = self.store.create(
                name=name, source=source, gallery=body["gallery"], fps=body["fps"],
                min_face=body["min_face"], roi=roi, absence_s=body["absence_s"], options={},
            )
        except MonitorExists:
            raise Conflict("monitor_exists", f"monitor {name!r} already exists") from None
        self.runtime.poke()
        return self.describe(monitor)

    def list(self) -> list[dict[str, Any]]:
        leases = self.store.leases()
        return [self.describe(m, leases.get(m.id)) for m in self.store.list()]

    def get(self, name: str) -> Monitor:
        monitor = self.store.get(name)
        if monitor is None:
            raise NotFound("monitor_not_found", f"monitor {name!r} does not exist")
        return monitor

    def describe(self, monitor: Monitor, lease=None) -> dict[str, Any]:
        if lease is None:
            lease = self.store.leases().get(monitor.id)
        worker = self.runtime.workers.get(monitor.id)
        if worker is not None:
            health, owner = worker.health(), self.runtime.owner
        elif lease is not None and aware(lease.expires_at) > utcnow():
            health, owner = dict(lease.health or {}), lease.owner
        else:
            health, owner = {"state": "unowned"}, None
        health = blank_health(health.get("state", "unowned")) | health
        return {
            "name": monitor.name,
            "source": redact(monitor.source),
            "gallery": monitor.gallery,
            "fps": monitor.fps,
            "min_face": monitor.min_face,
            "roi": monitor.roi,
            "absence_s": monitor.absence_s,
            "created_at": iso(monitor.created_at),
            "owner": owner,
            "health": health,
        }

    def delete(self, name: str) -> None:
        if not self.store.delete(name):
            raise NotFound("monitor_not_found", f"monitor {name!r} does not exist")
        self.runtime.poke()

"""Frames from a camera or file, decoded with PyAV in a thread, capped in rate, reconnecting with backoff.

Live sources are read as fast as they arrive and thinned to the frame-rate cap; files are paced at
their own timestamps (as a camera would deliver them) and end the monitor when they end.
``rtsp-listen://host:port/path`` turns FFmpeg's RTSP listen mode on: the monitor waits for an encoder
or camera to push (ANNOUNCE/RECORD) its stream to it instead of pulling from an RTSP server.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("marginface.monitors")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


def source_kind(source: str) -> str:
    """``rtsp``, ``http``, ``v4l2`` or ``file``."""
    low = source.lower()
    if low.startswith(("rtsp://", "rtsps://", "rtsp-listen://")):
        return "rtsp"
    if low.startswith(("http://", "https://")):
        return "http"
    if low.startswith("/dev/video") or low.startswith("v4l2://"):
        return "v4l2"
    return "file"


@dataclass
class SourceHealth:
    """What the API and /metrics report about a source (written by the decoding thread)."""

    state: str = "starting"
    frames_decoded: int = 0
    frames_kept: int = 0
    connects: int = 0
    last_error: str | None = None
    last_frame_at: float | None = None
    kept_times: list[float] = field(default_factory=list)

    def fps(self, window_s: float = 5.0) -> float:
        now = time.time()
        recent = [t for t in self.kept_times if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        return round((len(recent) - 1) / max(recent[-1] - recent[0], 1e-6), 2)


class FrameSource:
    """Calls ``on_frame(image_bgr, wall_time)`` for each kept frame, from its own thread."""

    def __init__(
        self,
        url: str,
        fps_cap: float,
        on_frame: Callable[[np.ndarray, float], None],
        *,
        open_timeout_s: float = 10.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.url = url
        self.kind = source_kind(url)
        self.listen = url.lower().startswith("rtsp-listen://")
        self.interval = 1.0 / fps_cap if fps_cap > 0 else 0.0
        self.on_frame = on_frame
        self.open_timeout_s = open_timeout_s
        self.backoff_max_s = backoff_max_s
        self.health = SourceHealth()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"monitor-source-{url[:40]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _open(self):
        import av

        # probe briefly: a long probe holds frames back, then releases them in a burst
        options: dict[str, str] = {"analyzeduration": "1000000", "probesize": "1000000"}
        fmt = None
        url = self.url
        if self.listen:
            url = "rtsp://" + url.split("://", 1)[1]
            options["rtsp_flags"] = "listen"
            # FFmpeg's default (-1, forever) overflows in its demuxer; wait one open period, then again
            options["listen_timeout"] = str(int(self.open_timeout_s))
        elif self.kind == "rtsp":
            options["rtsp_transport"] = "tcp"
        elif self.kind == "http":
            options["reconnect"] = "0"
        elif self.kind == "v4l2":
            fmt, url = "v4l2", url.removeprefix("v4l2://")
        timeout = (self.open_timeout_s + (2.0 if self.listen else 0.0), self.open_timeout_s)
        return av.open(url, format=fmt, options=options, timeout=timeout)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            self.health.state = "listening" if self.listen else "connecting"
            self.health.connects += 1
            got_frames = False
            try:
                container = self._open()
                try:
                    self.health.state = "running"
                    got_frames = self._decode(container)
                finally:
                    container.close()
                if self.kind == "file" and not self._stop.is_set():
                    self.health.state = "finished"
                    return
                if not self._stop.is_set():
                    self.health.last_error = "stream ended"
            except Exception as exc:  # noqa: BLE001 - any decode/connect failure means reconnect
                self.health.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if self.kind == "file" and isinstance(exc, FileNotFoundError):
                    self.health.state = "failed"
                    return
            if self._stop.is_set():
                break
            if self.listen:  # waiting for a push is the delay already; listen again at once
                self._stop.wait(0.2)
                continue
            delay = 0.5 if got_frames else min(delay * 2, self.backoff_max_s)
            wait = delay * (0.75 + 0.5 * random.random())
            self.health.state = "reconnecting"
            log.info("monitor source %s: %s; reconnecting in %.1f s", self.url, self.health.last_error, wait)
            self._stop.wait(wait)
        self.health.state = "stopped"

    def _decode(self, container) -> bool:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        got = False
        start_wall: float | None = None
        start_pts: float | None = None
        rate = 1.0 / self.interval if self.interval else 1e9
        bucket = max(2.0, 2.0 * rate)  # two seconds of frames
        tokens, last = bucket, time.monotonic()
        for frame in container.decode(stream):
            if self._stop.is_set():
                break
            got = True
            self.health.frames_decoded += 1
            if self.kind == "file" and frame.time is not None:
                if start_wall is None:
                    start_wall, start_pts = time.monotonic(), frame.time
                lag = (frame.time - start_pts) - (time.monotonic() - start_wall)
                if lag > 0:
                    self._stop.wait(lag)
            # token bucket on arrival time: the cap holds on average, while a burst (frames held back by
            # probing or a network stall; stream timestamps are unreliable, e.g. MJPEG's) keeps its frames
            now = time.monotonic()
            tokens = min(bucket, tokens + (now - last) * rate)
            last = now
            if tokens < 1.0:
                continue
            tokens -= 1.0
            wall = time.time()
            image = frame.to_ndarray(format="bgr24")
            self.health.frames_kept += 1
            self.health.last_frame_at = wall
            self.health.kept_times = [t for t in self.health.kept_times[-60:] if wall - t <= 10] + [wall]
            self.on_frame(image, wall)
        return got

"""One running monitor: frames → detect (capped rate) → track → embed best sightings → vote → event."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from datetime import datetime, timezone
from typing import Any

import cv2
import numpy as np

from app.events.service import EventService
from app.events.store import NewEvent
from app.monitors.settings import MonitorSettings
from app.monitors.source import FrameSource
from app.monitors.tables import Monitor
from app.monitors.tracker import Sample, Track, Tracker
from app.monitors.voting import Ballot, vote
from app.services.backoff import LoopHealth

log = logging.getLogger("marginface.monitors")


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """0..1 from the variance of the Laplacian of the face at 64×64 (blur and motion make it small)."""
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(box[2])), min(h, int(box[3]))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    gray = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    var = float(cv2.Laplacian(cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA), cv2.CV_64F).var())
    return var / (var + 50.0)


def quality(score: float, box: np.ndarray, sharp: float = 1.0) -> float:
    """Detector confidence × size (saturating at the recogniser's 112 px input) × sharpness."""
    side = float(min(box[2] - box[0], box[3] - box[1]))
    return float(score) * min(1.0, side / 112.0) * sharp


def snapshot(image: np.ndarray, box: np.ndarray, margin: float = 0.4) -> bytes | None:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    crop = image[max(0, int(y1 - my)) : min(h, int(y2 + my)), max(0, int(x1 - mx)) : min(w, int(x2 + mx))]
    if crop.size == 0:
        return None
    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes() if ok else None


def blank_health(state: str) -> dict[str, Any]:
    """Health of a monitor that runs nowhere (yet): every field present, zeros."""
    return {"state": state, "fps": 0.0, "frames_processed": 0, "frames_dropped": 0, "frames_decoded": 0,
            "connects": 0, "events": 0, "tracks": 0, "last_error": None, "last_frame_at": None}


def stamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc)


class MonitorWorker:
    def __init__(self, monitor: Monitor, ctx, events: EventService, settings: MonitorSettings) -> None:
        self.monitor = monitor
        self.ctx = ctx
        self.events = events
        self.settings = settings
        self.frames: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self.frames_dropped = 0
        self.frames_processed = 0
        self.events_emitted = 0
        self.state = "starting"
        self.last_error: str | None = None
        self.source: FrameSource | None = None
        self.tracker = Tracker(timeout_s=settings.monitor_track_timeout_s)
        self._recent: dict[Any, float] = {}  # subject id → last seen (re-announce after absence)
        self._recent_unknown: dict[int, tuple[np.ndarray, float]] = {}  # unknown look → last seen
        self._unknown_ids = 0
        self._processed_at: collections.deque[float] = collections.deque(maxlen=50)
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"monitor-{self.monitor.name}")

    async def stop(self) -> None:
        if self.source:
            await asyncio.to_thread(self.source.stop)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.state = "stopped"

    def health(self) -> dict[str, Any]:
        src = self.source.health if self.source else None
        state = self.state if self.state != "running" or src is None else src.state
        times = list(self._processed_at)
        now = time.time()
        recent = [t for t in times if now - t <= 5.0]
        fps = (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6) if len(recent) >= 2 else 0.0
        return {
            "state": state,
            "fps": round(fps, 2),
            "frames_processed": self.frames_processed,
            "frames_dropped": self.frames_dropped,
            "frames_decoded": src.frames_decoded if src else 0,
            "connects": src.connects if src else 0,
            "events": self.events_emitted,
            "tracks": len(self.tracker.tracks),
            "last_error": self.last_error or (src.last_error if src else None),
            "last_frame_at": src.last_frame_at if src else None,
        }

    # frames arrive from the decoding thread
    def _on_frame(self, image: np.ndarray, at: float) -> None:
        try:
            self._loop.call_soon_threadsafe(self._offer, image, at)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _offer(self, image: np.ndarray, at: float) -> None:
        if len(self.frames) >= self.settings.monitor_queue_frames:
            self.frames.popleft()  # overload: the oldest frame goes, counted; events are never dropped
            self.frames_dropped += 1
        self.frames.append((image, at))
        self._ready.set()

    async def _run(self) -> None:
        while True:
            try:
                gallery = await asyncio.to_thread(self.ctx.galleries.get, self.monitor.gallery)
                engine = self.ctx.galleries.engine_for(gallery)
                break
            except Exception as exc:  # noqa: BLE001 - missing gallery or pack: report and retry
                self.state, self.last_error = "error", f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
                await asyncio.sleep(5.0)
        self.state, self.last_error = "running", None
        self.gallery, self.engine = gallery, engine
        self.max_faces = self.ctx.settings.max_faces
        self.source = FrameSource(
            self.monitor.source, self.monitor.fps, self._on_frame,
            open_timeout_s=self.settings.monitor_open_timeout_s,
            backoff_max_s=self.settings.monitor_reconnect_max_s,
        )
        self.source.start()
        while True:
            if not self.frames:
                self._ready.clear()
                try:
                    await asyncio.wait_for(self._ready.wait(), self.settings.monitor_track_timeout_s)
                except asyncio.TimeoutError:
                    await self._finish(self.tracker.expire(time.time()))
                    continue
            image, at = self.frames.popleft()
            try:
                await self._process(image, at)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the monitor
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("monitor %s: frame failed", self.monitor.name)

    def _roi(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        roi = self.monitor.roi
        if not roi:
            return image, 0.0, 0.0
        h, w = image.shape[:2]
        x, y, rw, rh = roi
        x0, y0 = int(x * w), int(y * h)
        return image[y0 : y0 + max(1, int(rh * h)), x0 : x0 + max(1, int(rw * w))], float(x0), float(y0)

    async def _process(self, image: np.ndarray, at: float) -> None:
        loop = asyncio.get_running_loop()
        pipeline = self.engine.pipeline
        view, ox, oy = self._roi(image)
        faces = await loop.run_in_executor(self.ctx.engines.executor, self._detect, view)
        boxes = [f.box + np.array([ox, oy, ox, oy], np.float32) for f in faces]
        tracks, ended = self.tracker.update(boxes, at)
        keep = self.settings.monitor_vote_frames
        chosen = []
        pending = []
        for face, box, track in zip(faces, boxes, tracks, strict=True):
            if track.decided:
                self._seen(track, at)
                continue
            pending.append(track)
            q = quality(face.score, face.box, sharpness(view, face.box))
            if track.wants(q, keep):
                chosen.append((face, box, track, q))
        if chosen:
            crops = await loop.run_in_executor(
                self.ctx.engines.executor, pipeline.align, view, [c[0] for c in chosen]
            )
            embeddings = await self.engine.embed(crops)
            for (face, box, track, q), emb in zip(chosen, embeddings, strict=True):
                track.add(Sample(q, emb, snapshot(image, box), at), keep)
                track.det_score = max(getattr(track, "det_score", 0.0), float(face.score))
                track.fresh = True
        wait = self.settings.monitor_unknown_wait_s
        for track in pending:
            if track.decided or len(track.samples) < keep:
                continue
            # a vote on new sightings; "unknown" is final only once the track is old enough: an enrolled
            # person whose first sightings were poor (entering, turned, blurred) gets better ones meanwhile
            overdue = at - track.first_seen >= wait and not getattr(track, "waited", False)
            if getattr(track, "fresh", False) or overdue:
                track.fresh = False
                track.waited = overdue
                await self._decide(track, final=overdue)
        self.frames_processed += 1
        self._processed_at.append(time.time())
        await self._finish(ended)

    def _detect(self, view: np.ndarray) -> list:
        """Detect on a copy scaled down to ``monitor_detect_max_side`` (cost grows with pixels); boxes and
        landmarks are scaled back, so alignment and snapshots use the full-resolution frame."""
        side = max(view.shape[:2])
        limit = self.settings.monitor_detect_max_side
        scale = limit / side if limit and side > limit else 1.0
        small = view
        if scale != 1.0:
            small = cv2.resize(view, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_size = self.monitor.min_face * scale
        faces = self.engine.pipeline.detect(small, min_size=min_size, max_faces=self.max_faces)
        if scale != 1.0:
            for face in faces:
                face.box = face.box / scale
                face.landmarks = face.landmarks / scale
        return faces

    async def _finish(self, ended: list[Track]) -> None:
        for track in ended:
            if not track.decided and track.samples:
                await self._decide(track, final=True)
            if track.event is not None:
                await asyncio.to_thread(self.events.store.touch, track.event["id"], stamp(track.last_seen))

    def _seen(self, track: Track, at: float) -> None:
        key = getattr(track, "key", None)
        if isinstance(key, int):
            self._recent[key] = at
        elif key is not None and key[1] in self._recent_unknown:
            self._recent_unknown[key[1]] = (self._recent_unknown[key[1]][0], at)

    async def _decide(self, track: Track, final: bool) -> None:
        """Vote; an ``unknown`` outcome only counts when ``final`` (the track ended or waited long enough)."""
        index = await asyncio.to_thread(self.ctx.galleries.indexes.get, self.gallery)
        queries = np.stack([s.embedding for s in track.samples])
        hits = await asyncio.to_thread(index.search, queries, 1) if index.size else [[] for _ in queries]
        cut = self.engine.threshold
        ballots = []
        for sample, row in zip(track.samples, hits, strict=True):
            best = row[0] if row else None
            matched = best is not None and best.similarity >= cut
            ballots.append(Ballot(best.subject_id if matched else None,
                                  best.similarity if best else 0.0, sample.quality))
        decision = vote(ballots)
        if decision.kind == "unknown" and not final:
            return
        track.decided = True
        mean = queries.mean(axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-9)
        absence = self.monitor.absence_s
        if decision.kind == "recognized":
            track.key = decision.subject_id
            last = self._recent.get(decision.subject_id)
            self._recent[decision.subject_id] = track.last_seen
            if last is not None and track.first_seen - last < absence:
                return  # the same person, back before the absence elapsed: not a new appearance
            names = await asyncio.to_thread(self.ctx.galleries.repo.subject_names, [decision.subject_id])
            name = names.get(decision.subject_id)
        else:
            now = track.last_seen
            for k in [k for k, (_, t) in self._recent_unknown.items() if now - t >= absence * 4]:
                del self._recent_unknown[k]
            for k, (emb, t) in self._recent_unknown.items():
                if float(np.dot(emb, mean)) >= cut:
                    track.key = ("u", k)
                    self._recent_unknown[k] = (emb, now)
                    if track.first_seen - t < absence:
                        return
                    break
            else:
                self._unknown_ids += 1
                self._recent_unknown[self._unknown_ids] = (mean, now)
                track.key = ("u", self._unknown_ids)
            name = None
        best = track.samples[0]
        new = NewEvent(
            monitor=self.monitor.name, gallery=self.gallery.name, kind=decision.kind,
            subject_id=decision.subject_id, subject=name, similarity=decision.similarity,
            first_seen=stamp(track.first_seen), last_seen=stamp(track.last_seen),
            details={"track": track.id, "frames": track.hits, "votes": len(ballots),
                     "support": decision.support,
                     "quality": round(best.quality, 4), "det_score": round(track.det_score, 4),
                     "box": [round(float(v), 1) for v in track.box], "threshold": cut,
                     "decided_at": stamp(time.time()).isoformat()},
            snapshot=best.snapshot, embedding=mean.astype(np.float32),
        )
        threshold = self.settings.cluster_threshold if self.settings.cluster_threshold is not None else cut
        health = LoopHealth(log, f"monitor {self.monitor.name}: recording an event", 0.5, 5.0)
        while True:  # an event is never dropped: a store outage holds this monitor (frames drop, counted)
            try:
                track.event = await self.events.record(new, threshold)
                break
            except Exception as exc:  # noqa: BLE001 - retried until the store answers
                self.last_error = f"event not yet stored: {type(exc).__name__}"
                await asyncio.sleep(health.failed(exc))
        if health.failing:
            health.ok()
            self.last_error = None
        self.events_emitted += 1

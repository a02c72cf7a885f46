"""A small IoU tracker with constant-velocity prediction: follows faces across frames of one monitor."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Sample:
    """One embedded sighting of a track: its quality, embedding and snapshot."""

    quality: float
    embedding: np.ndarray
    snapshot: bytes | None
    at: float


@dataclass
class Track:
    id: int
    box: np.ndarray
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1
    samples: list[Sample] = field(default_factory=list)
    decided: bool = False
    event: dict | None = None

    def predict(self, at: float) -> np.ndarray:
        return self.box + self.velocity * max(0.0, at - self.last_seen)

    def update(self, box: np.ndarray, at: float) -> None:
        dt = at - self.last_seen
        if dt > 0:
            # alpha-beta filter on the box corners: smooths the detector's jitter
            self.velocity = 0.5 * self.velocity + 0.5 * (box - self.box) / dt
        self.box = box.astype(np.float32)
        self.last_seen = at
        self.hits += 1

    def wants(self, quality: float, keep: int) -> bool:
        """Is a sighting of this quality among the ``keep`` best so far (worth embedding)?"""
        if len(self.samples) < keep:
            return True
        return quality > min(s.quality for s in self.samples)

    def add(self, sample: Sample, keep: int) -> None:
        self.samples.append(sample)
        self.samples.sort(key=lambda s: s.quality, reverse=True)
        del self.samples[keep:]


class Tracker:
    """Greedy IoU matching of detections to predicted track boxes; tracks unseen for ``timeout_s`` end."""

    def __init__(self, iou_threshold: float = 0.25, timeout_s: float = 1.0) -> None:
        self.iou_threshold = iou_threshold
        self.timeout_s = timeout_s
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def update(self, boxes: list[np.ndarray], at: float) -> tuple[list[Track], list[Track]]:
        """Match ``boxes`` (seen at time ``at``); returns (track per box, tracks that ended)."""
        pairs = []
        for tid, track in self.tracks.items():
            predicted = track.predict(at)
            for j, box in enumerate(boxes):
                overlap = iou(predicted, box)
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, tid, j))
        pairs.sort(reverse=True)
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for _, tid, j in pairs:
            if tid in used or j in assigned:
                continue
            used.add(tid)
            self.tracks[tid].update(np.asarray(boxes[j], np.float32), at)
            assigned[j] = self.tracks[tid]
        for j, box in enumerate(boxes):
            if j not in assigned:
                track = Track(next(self._ids), np.asarray(box, np.float32), at, at)
                self.tracks[track.id] = track
                assigned[j] = track
        return [assigned[j] for j in range(len(boxes))], self.expire(at)

    def expire(self, at: float) -> list[Track]:
        ended = [t for t in self.tracks.values() if at - t.last_seen > self.timeout_s]
        for track in ended:
            del self.tracks[track.id]
        return ended

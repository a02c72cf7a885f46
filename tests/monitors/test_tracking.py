"""The tracker and the vote, on their own: random scenes (model-based) and hand-made ballots."""

from __future__ import annotations

import numpy as np
import pytest

from app.monitors.tracker import Sample, Tracker, iou
from app.monitors.voting import Ballot, vote


def _scene(rng: np.random.Generator, fps: float = 5.0, seconds: float = 20.0):
    """Faces in separate lanes, each appearing, moving with noise, leaving and maybe coming back, with
    single missed detections; yields (time, [(truth id, box)])."""
    lanes = int(rng.integers(1, 5))
    appearances = []
    for lane in range(lanes):
        t = float(rng.uniform(0, 3))
        while t < seconds - 1:
            length = float(rng.uniform(1.0, 5.0))
            appearances.append((len(appearances), lane, t, min(t + length, seconds)))
            t += length + float(rng.uniform(1.5, 4.0))  # absence > the track timeout
    for i in range(int(seconds * fps)):
        at = i / fps
        dets = []
        for ident, lane, start, end in appearances:
            if start <= at < end and rng.random() > 0.15:  # 15 % missed detections
                x = 20 + 40 * (at - start) + rng.normal(0, 2)
                y = 10 + 120 * lane + rng.normal(0, 2)
                side = 80 + rng.normal(0, 3)
                dets.append((ident, np.array([x, y, x + side, y + side], np.float32)))
        yield at, dets


@pytest.mark.parametrize("seed", range(25))
def test_one_track_per_appearance(seed: int):
    rng = np.random.default_rng(seed)
    tracker = Tracker(iou_threshold=0.25, timeout_s=1.0)
    track_of: dict[int, set[int]] = {}
    truth_of: dict[int, set[int]] = {}
    for at, dets in _scene(rng):
        tracks, _ = tracker.update([box for _, box in dets], at)
        for (ident, _), track in zip(dets, tracks, strict=True):
            track_of.setdefault(ident, set()).add(track.id)
            truth_of.setdefault(track.id, set()).add(ident)
    # each appearance followed by a single track, and no track ever mixes two appearances
    assert all(len(ids) == 1 for ids in track_of.values()), track_of
    assert all(len(ids) == 1 for ids in truth_of.values()), truth_of


def test_tracks_end_after_the_timeout():
    tracker = Tracker(timeout_s=1.0)
    box = np.array([0, 0, 100, 100], np.float32)
    (track,), ended = tracker.update([box], 0.0)
    assert ended == []
    assert tracker.update([], 0.9)[1] == []
    assert tracker.update([], 1.2)[1] == [track]
    (again,), _ = tracker.update([box], 1.4)
    assert again.id != track.id


def test_track_keeps_its_best_samples():
    tracker = Tracker()
    (track,), _ = tracker.update([np.array([0, 0, 50, 50], np.float32)], 0.0)
    for q in (0.2, 0.9, 0.5, 0.1, 0.7):
        if track.wants(q, 3):
            track.add(Sample(q, np.zeros(4, np.float32), None, 0.0), 3)
    assert [s.quality for s in track.samples] == [0.9, 0.7, 0.5]
    assert not track.wants(0.4, 3) and track.wants(0.6, 3)


def test_iou():
    a = np.array([0, 0, 10, 10], np.float32)
    assert iou(a, a) == 1.0
    assert iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0
    assert iou(a, np.array([5, 0, 15, 10], np.float32)) == pytest.approx(50 / 150)


def test_vote_weights_and_unknown():
    d = vote([Ballot(7, 0.8, 1.0), Ballot(7, 0.6, 1.0), Ballot(None, 0.2, 0.5)])
    assert d.kind == "recognized" and d.subject_id == 7 and d.similarity == pytest.approx(0.7)
    assert d.support == pytest.approx(0.8)
    # one sharp sighting of subject 3 is outweighed by two good sightings with no match
    d = vote([Ballot(3, 0.5, 0.3), Ballot(None, 0.2, 0.9), Ballot(None, 0.1, 0.8)])
    assert d.kind == "unknown" and d.subject_id is None
    # quality decides between two subjects
    d = vote([Ballot(1, 0.9, 0.2), Ballot(2, 0.6, 0.9)])
    assert d.subject_id == 2
    assert vote([]).kind == "unknown"

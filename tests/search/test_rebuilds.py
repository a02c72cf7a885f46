"""Rebuilds in the background: searches answer from the current index, writes made meanwhile are not lost."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.search import factory
from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from tests.search.conftest import DIM, clustered, views


def _top_ids(index: GalleryIndex, queries: np.ndarray) -> np.ndarray:
    return np.array([hits[0].face_id if hits else -1 for hits in index.search(queries, 1)])


@pytest.mark.parametrize("kind", ["ivf_sq8", "ivf_pqfs"])
def test_writes_during_a_background_build_reach_the_new_index(monkeypatch, kind):
    """The build is held (a real build, paused after training) while faces are added and removed."""
    release, trained = threading.Event(), threading.Event()
    real = factory.make_trained

    def paused(kind, *args, **kwargs):
        index = real(kind, *args, **kwargs)
        if kind == "flat":
            return index
        trained.set()
        assert release.wait(30)
        return index

    monkeypatch.setattr(factory, "make_trained", paused)
    ids, subjects, vectors = clustered(6000)
    params = IndexParams(kind=kind, use_gpu=False, background_min=1000, retrain_growth=2.0)
    index = GalleryIndex(DIM, params)
    index.add(ids[:4000], subjects[:4000], vectors[:4000])  # ≥ IVF_MIN_TRAIN: a background build starts
    assert trained.wait(30) and index.rebuilding() and index.kind == "flat"

    found = _top_ids(index, vectors[:100])  # answered (exactly) from the current state meanwhile
    assert (found == ids[:100]).all()
    index.add(ids[4000:4500], subjects[4000:4500], vectors[4000:4500])  # new while building
    index.remove(list(range(1, 201)))  # faces the build already took
    index.remove(list(range(4001, 4051)))  # faces added during the build
    index.remove_subject(int(subjects[3000]))
    gone = set(range(1, 201)) | set(range(4001, 4051)) | {int(i) for i in ids[subjects == subjects[3000]]}
    release.set()
    assert index.wait_idle(30)

    assert index.kind == kind and index.builds == 1 and index.build_error is None
    live = [int(i) for i in ids[:4500] if int(i) not in gone]
    assert index.face_ids() == set(live) and index.size == len(live)
    # nothing removed left behind (fast-scan: tombstoned), nothing missing
    assert index._index.ntotal == len(live) + len(index._tombstones)  # noqa: SLF001
    assert not index._tombstones & set(live)  # noqa: SLF001
    found = _top_ids(index, vectors[np.array(live) - 1])
    assert np.mean(found == np.array(live)) >= 0.99  # each face finds itself through the new IVF index
    assert not gone & set(_top_ids(index, vectors[:300]).tolist())


@pytest.mark.parametrize("kind", ["ivf_sq8", "ivf_pqfs"])
def test_searches_keep_answering_while_the_gallery_grows_and_retrains(kind):
    ids, subjects, vectors = clustered(24_000, seed=5)
    params = IndexParams(kind=kind, use_gpu=False, background_min=2000, retrain_growth=2.0, nprobe=8)
    index = GalleryIndex(DIM, params)
    index.add(ids[:2500], subjects[:2500], vectors[:2500])
    stop, errors, during, answered = threading.Event(), [], [0], [0]
    queries = views(vectors, 200)

    def searcher() -> None:
        while not stop.is_set():
            try:
                building = index.rebuilding()
                hits = index.search(queries, 3)
                assert all(len(h) == 3 for h in hits)
                answered[0] += 1
                during[0] += building
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=searcher)
    thread.start()
    for start in range(2500, 24_000, 500):
        index.add(ids[start : start + 500], subjects[start : start + 500], vectors[start : start + 500])
    index.wait_idle(60)
    stop.set()
    thread.join(30)
    assert not errors, errors
    assert index.builds >= 2 and during[0] > 0 and answered[0] > 0
    assert index._trained_at * params.retrain_growth > index.size  # noqa: SLF001 - retrained as it grew
    assert index.size == 24_000 and index._index.ntotal == 24_000  # noqa: SLF001
    assert index.wait_idle(0) and index.kind == kind
    assert (_top_ids(index, vectors[-300:]) == ids[-300:]).mean() >= 0.98

"""FAISS gallery indexes (flat, IVF, HNSW), per-subject results, the change-log sync and the micro-batcher."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.batching import MicroBatcher
from app.search.factory import IVF_MIN_TRAIN, IndexParams
from app.search.gallery_index import GalleryIndex
from app.search.registry import IndexRegistry
from app.store.db import make_engine
from app.store.migrate import upgrade
from app.store.repository import NewFace, Repository

DIM = 32


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_index_kinds_find_removed_and_kept_faces(kind):
    rng = np.random.default_rng(0)
    n = IVF_MIN_TRAIN + 500
    vectors, ids = _unit(rng, n), np.arange(1, n + 1)
    subjects = ids // 5
    index = GalleryIndex(DIM, IndexParams(kind=kind, use_gpu=False))
    assert index.add(ids, subjects, vectors) == n
    assert index.add(ids[:10], subjects[:10], vectors[:10]) == 0  # idempotent
    expected = {"flat": "IndexFlatIP", "ivf": "IndexIVFFlat", "hnsw": "IndexHNSWFlat"}[kind]
    assert index.describe() == expected

    queries = vectors[:200] + 0.05 * _unit(rng, 200)
    top1 = [hits[0].subject_id for hits in index.search(queries, 3)]
    recall = np.mean(np.array(top1) == subjects[:200])
    assert recall >= (1.0 if kind == "flat" else 0.9), recall

    index.remove_subject(int(subjects[0]))
    index.remove(list(range(100, 700)))  # > 20 %: HNSW rebuilds past its tombstone ratio
    assert index.size == n - 600 - np.sum(subjects[:99] == subjects[0])
    for hits in index.search(vectors[:120], 5):
        assert all(h.subject_id != subjects[0] for h in hits)
        assert all(not 100 <= h.face_id < 700 for h in hits)
        assert len({h.subject_id for h in hits}) == len(hits) == 5
    assert index.search(vectors[800:801], 1)[0][0].face_id == 801


def test_results_are_per_subject_even_when_one_subject_fills_the_top():
    rng = np.random.default_rng(1)
    query = _unit(rng, 1)
    crowd = query + 0.01 * _unit(rng, 300)  # 300 faces of subject 1, all closer than anyone else
    others = _unit(rng, 50)
    index = GalleryIndex(DIM, IndexParams(kind="flat", use_gpu=False))
    index.add(np.arange(1, 301), np.ones(300, np.int64), crowd / np.linalg.norm(crowd, axis=1, keepdims=True))
    index.add(np.arange(301, 351), np.arange(2, 52), others)
    hits = index.search(query, 4)[0]
    assert [h.subject_id for h in hits][0] == 1 and len({h.subject_id for h in hits}) == 4
    assert hits[0].similarity >= hits[1].similarity >= hits[3].similarity


def test_change_log_brings_another_process_registry_in_step(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.create_gallery("g", "default", "1", DIM, "flat")
    mine, theirs = (IndexRegistry(repo, IndexParams(use_gpu=False)) for _ in range(2))
    mine.load_all()
    theirs.load_all()
    rng = np.random.default_rng(2)
    subject = repo.create_subject(gallery.id, "ann")
    vectors = _unit(rng, 3)
    face_ids = repo.add_faces(gallery, subject.id, [NewFace(v) for v in vectors])
    mine.add_local(gallery, face_ids, subject.id, vectors)
    assert theirs.get(gallery).size == 0
    assert theirs.sync_once() == 3
    assert theirs.get(gallery).size == 3 and theirs.out_of_step() == []
    assert mine.sync_once() == 3 and mine.get(gallery).size == 3  # own changes replay idempotently

    repo.delete_face(gallery.id, face_ids[0])
    repo.delete_subject(gallery.id, subject.id)
    theirs.sync_once()
    assert theirs.get(gallery).size == 0
    repo.delete_gallery(gallery.id)
    theirs.sync_once()
    assert gallery.id not in theirs.loaded()


def test_micro_batcher_groups_concurrent_requests_and_keeps_rows_in_order():
    sizes: list[int] = []

    def double(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return x * 2

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(double, max_items=8, max_wait_ms=30)
        inputs = [np.full((1 + i % 3, 2), i, np.float32) for i in range(12)]
        outputs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.stop()
        return [o - 2 * x for o, x in zip(outputs, inputs, strict=True)]

    differences = asyncio.run(scenario())
    assert all(not d.any() for d in differences)
    assert sum(sizes) == sum(1 + i % 3 for i in range(12))
    assert len(sizes) < 12 and max(sizes) <= 8


def test_micro_batcher_hands_errors_to_every_waiting_request():
    def broken(_: np.ndarray) -> np.ndarray:
        raise ValueError("model failed")

    async def scenario() -> list[BaseException | np.ndarray]:
        batcher = MicroBatcher(broken, max_items=8, max_wait_ms=10)
        results = await asyncio.gather(
            *(batcher.submit(np.zeros((1, 2))) for _ in range(3)), return_exceptions=True
        )
        await batcher.stop()
        return results

    assert all(isinstance(r, ValueError) for r in asyncio.run(scenario()))

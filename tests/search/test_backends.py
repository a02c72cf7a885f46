"""The same search and change-log consistency tests over both backends (FAISS in process, Milvus Lite)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from app.search.backends import configure_search
from app.search.registry import IndexRegistry
from app.settings import Settings
from app.store.repository import NewFace, Repository
from tests.search.conftest import DIM, clustered, exact_top1, views

HAS_MILVUS = all(importlib.util.find_spec(name) is not None for name in ("milvus_lite", "pymilvus"))
NO_MILVUS = pytest.mark.skipif(not HAS_MILVUS, reason="pymilvus / milvus-lite not installed")
BACKENDS = ["faiss", pytest.param("milvus", marks=NO_MILVUS)]


def _registry(repo: Repository, tmp_path, backend: str, kind: str = "flat") -> IndexRegistry:
    settings = Settings(home=tmp_path, search_backend=backend, default_index=kind, use_gpu_index=False,
                        milvus_uri=str(tmp_path / "milvus.db"), search_snapshots=False)
    registry = IndexRegistry(repo, None)  # params come from the settings
    configure_search(registry, settings)
    return registry


def _enroll(repo: Repository, gallery, name: str, vectors: np.ndarray) -> tuple[int, list[int]]:
    subject = repo.create_subject(gallery.id, name)
    return subject.id, repo.add_faces(gallery, subject.id, [NewFace(v) for v in vectors])


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_finds_each_subject_and_follows_deletes(repo, tmp_path, backend):
    gallery = repo.create_gallery("g", "default", "1", DIM, "flat")
    registry = _registry(repo, tmp_path, backend)
    registry.load_all()
    _, subjects, vectors = clustered(400, seed=3)
    enrolled = {}
    for s in range(100):
        sid, face_ids = _enroll(repo, gallery, f"s{s}", vectors[subjects == s])
        registry.add_local(gallery, face_ids, sid, vectors[subjects == s])
        enrolled[s] = (sid, face_ids)
    index = registry.get(gallery)
    assert index.size == 400 and index.subjects == 100 and index.backend == backend

    queries = views(vectors, 400)
    hits = index.search(queries, 5)
    top = np.array([h[0].subject_id for h in hits])
    assert np.mean(top == np.array([enrolled[s][0] for s in subjects])) >= 0.97
    assert all(len({h.subject_id for h in row}) == 5 for row in hits)
    ids = np.concatenate([enrolled[s][1] for s in range(100)])
    truth = exact_top1(vectors, ids, queries)
    assert np.mean(np.array([h[0].face_id for h in hits]) == truth) >= 0.97

    gone_subject, gone_face = enrolled[0][0], enrolled[1][1][0]
    repo.delete_subject(gallery.id, gone_subject)
    repo.delete_face(gallery.id, gone_face)
    registry.sync_once()
    assert index.size == 400 - len(enrolled[0][1]) - 1
    for row in index.search(queries[:40], 5):
        assert all(h.subject_id != gone_subject and h.face_id != gone_face for h in row)


@pytest.mark.parametrize("backend", BACKENDS)
def test_change_log_brings_a_second_registry_in_step(repo, tmp_path, backend):
    gallery = repo.create_gallery("g", "default", "1", DIM, "flat")
    mine, theirs = _registry(repo, tmp_path, backend), _registry(repo, tmp_path, backend)
    mine.load_all()
    theirs.load_all()
    _, _, vectors = clustered(3)
    sid, face_ids = _enroll(repo, gallery, "ann", vectors)
    mine.add_local(gallery, face_ids, sid, vectors)
    assert theirs.get(gallery).size == 0
    assert theirs.get(gallery).search(vectors[:1], 1) == [[]]  # not yet in its view, even on a shared server
    assert theirs.sync_once() == 3 and theirs.get(gallery).size == 3 and theirs.out_of_step() == []
    assert theirs.get(gallery).search(vectors[:1], 1)[0][0].face_id == face_ids[0]
    assert mine.sync_once() == 3 and mine.get(gallery).size == 3  # own changes replay idempotently
    repo.delete_face(gallery.id, face_ids[0])
    theirs.sync_once()
    mine.sync_once()
    assert theirs.get(gallery).size == mine.get(gallery).size == 2
    if backend == "milvus":
        assert theirs.get(gallery).stored_count() == 2  # no duplicates from two registries upserting


@pytest.mark.parametrize("backend", BACKENDS)
def test_restart_reconciles_with_the_store(repo, tmp_path, backend):
    gallery = repo.create_gallery("g", "default", "1", DIM, "flat")
    first = _registry(repo, tmp_path, backend)
    first.load_all()
    _, _, vectors = clustered(60, seed=4)
    sid, face_ids = _enroll(repo, gallery, "ann", vectors[:40])
    first.add_local(gallery, face_ids, sid, vectors[:40])
    # while this process is down, another one deletes and adds faces
    for face_id in face_ids[:10]:
        repo.delete_face(gallery.id, face_id)
    _, later = _enroll(repo, gallery, "bob", vectors[40:])
    if backend == "milvus":  # a restarted Milvus holds the collection released (not loaded)
        old = first.get(gallery)
        old.client.release_collection(old.collection)
    second = _registry(repo, tmp_path, backend)
    second.load_all()
    index = second.get(gallery)
    assert index.face_ids() == set(face_ids[10:]) | set(later)
    if backend == "milvus":
        assert index.stored_count() == 50  # the 10 deleted faces left Milvus, the 20 new ones arrived
    assert {h.face_id for row in index.search(vectors[:10], 3) for h in row}.isdisjoint(face_ids[:10])

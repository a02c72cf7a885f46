"""IVF-PQ fast-scan (``ivf_pqfs``, what ``auto`` picks past exact search) and float tables kept on disk."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.search import factory
from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.search.snapshots import SnapshotStore
from tests.search.conftest import DIM, clustered, exact_top1, views

N = 5000


def _top_ids(index: GalleryIndex, queries: np.ndarray) -> np.ndarray:
    return np.array([hits[0].face_id if hits else -1 for hits in index.search(queries, 1)])


def _built(kind: str = "ivf_pqfs", n: int = N, **settings) -> tuple[GalleryIndex, tuple]:
    data = clustered(n, seed=4)
    index = GalleryIndex(DIM, IndexParams(kind=kind, use_gpu=False, exact_max_faces=1000, **settings))
    index.add(*data)
    index.wait_idle()
    return index, data


def test_fastscan_tombstones_removals_and_finds_faces_added_after_them():
    index, (ids, subjects, vectors) = _built()
    assert index.kind == "ivf_pqfs" and index.describe() == "IndexIVFPQFastScan"
    assert not factory.removable(index._index)  # noqa: SLF001 - FAISS's remove_ids corrupts fast-scan lists
    index.remove(list(range(1, 301)))  # 6 %: tombstoned, no rebuild
    assert index.builds == 1 and len(index._tombstones) == 300  # noqa: SLF001
    assert not set(_top_ids(index, vectors[:300]).tolist()) & set(range(1, 301))
    extra_ids = np.arange(10_001, 10_301, dtype=np.int64)  # new faces: their codes must be their own
    index.add(extra_ids, subjects[:300] + 10_000, vectors[:300])
    assert (_top_ids(index, vectors[:300]) == extra_ids).mean() >= 0.99
    assert (_top_ids(index, vectors[300:600]) == ids[300:600]).mean() >= 0.99
    index.remove(list(range(301, 1501)))  # past the tombstone ratio: rebuilt without them
    index.wait_idle()
    assert index.builds == 2 and not index._tombstones  # noqa: SLF001
    assert index._index.ntotal == index.size == N - 1500 + 300  # noqa: SLF001


def test_fastscan_recall_and_exact_similarities_after_reranking():
    index, (ids, _, vectors) = _built()
    queries = views(vectors, 300)
    found = _top_ids(index, queries)
    assert np.mean(found == exact_top1(vectors, ids, queries)) >= 0.95
    sims = [hits[0].similarity for hits in index.search(queries[:20], 1)]
    exact = [float(q @ vectors[f - 1]) for q, f in zip(queries[:20], found[:20], strict=True)]
    assert np.allclose(sims, exact, atol=1e-5)
    nprobe, reached = index.calibration
    assert reached >= 0.99 or nprobe == index._index.nlist  # noqa: SLF001


def test_auto_picks_fastscan_and_puts_floats_on_disk_past_the_budget():
    params = IndexParams(kind="auto")  # 8 GiB default budget
    assert factory.resolve_kind(params, 10_000_000, 128) == ("ivf_pqfs", False)
    assert not factory.floats_on_disk(params, 10_000_000, 128)  # 10M × 560 B = 5.2 GiB: floats in RAM
    assert factory.resolve_kind(params, 10_000_000, 512) == ("ivf_pqfs", False)
    assert factory.floats_on_disk(params, 10_000_000, 512)  # 20 GB of floats: on disk, 96 B/face in RAM
    assert factory.bytes_per_face("ivf_pqfs", params, 512, on_disk=True) == 64 + factory.BOOKKEEPING_BYTES
    assert factory.bytes_per_face("ivf_pqfs", params, 128) == 512 + 16 + factory.BOOKKEEPING_BYTES
    tiny = IndexParams(kind="auto", memory_budget_mb=1)
    assert factory.resolve_kind(tiny, 10_000_000, 128) == ("ivf_pqfs", True)  # even the codes are over
    assert not factory.floats_on_disk(IndexParams(kind="flat", memory_budget_mb=1), 10**6, 128)


@pytest.mark.parametrize("kind", ["ivf_pqfs", "ivf_sq8"])
def test_floats_over_the_budget_live_in_a_memory_mapped_file(tmp_path, kind):
    n = 8000
    index, (ids, subjects, vectors) = _built(kind, n, memory_budget_mb=1, vectors_dir=str(tmp_path / "vec"))
    assert index.floats_on_disk and index.kind == kind  # 8000 × (128 + codes + 32) B > 1 MiB
    assert index.memory_bytes() < n * 4 * DIM  # less than the floats alone: they are not counted as RAM
    queries = views(vectors, 200)
    assert np.mean(_top_ids(index, queries) == exact_top1(vectors, ids, queries)) >= 0.95
    index.remove(list(range(1, 101)))  # swap-removes write into the mapped file
    index.add(np.arange(20_001, 20_101), subjects[:100], vectors[:100])  # grows the file in place
    live = np.concatenate([ids[100:], np.arange(20_001, 20_101)])
    live_vectors = np.concatenate([vectors[100:], vectors[:100]])
    assert (_top_ids(index, vectors[:100]) == np.arange(20_001, 20_101)).mean() >= 0.99
    table = index._table  # noqa: SLF001 - rows read one by one (pread) or through the mapping agree
    picked = np.random.default_rng(0).permutation(live)[:500]
    position = {int(face): i for i, face in enumerate(live)}
    expected = live_vectors[[position[int(face)] for face in picked]]
    assert np.array_equal(table.vectors_at(table.rows(picked)), expected)
    assert np.mean(_top_ids(index, queries) == exact_top1(live_vectors, live, queries)) >= 0.95

    gallery = SimpleNamespace(id=3, name="g", created_at="t", embedding_size=DIM, index_kind=kind)
    store = SnapshotStore(tmp_path / "snap")
    store.save(gallery, index, 77)
    loaded, position = store.load(gallery, index.params)
    assert position == 77 and loaded.floats_on_disk and loaded.kind == kind
    assert loaded._tombstones == index._tombstones  # noqa: SLF001
    assert (_top_ids(loaded, queries) == _top_ids(index, queries)).all()


def test_fastscan_snapshot_round_trip_keeps_tombstones_and_calibration(tmp_path):
    index, (_, _, vectors) = _built()
    index.remove(list(range(1, 51)))
    gallery = SimpleNamespace(id=1, name="g", created_at="t", embedding_size=DIM, index_kind="ivf_pqfs")
    store = SnapshotStore(tmp_path)
    store.save(gallery, index, 5)
    loaded, _ = store.load(gallery, index.params)
    assert not loaded.floats_on_disk and loaded.kind == "ivf_pqfs"
    assert loaded._index.nprobe == index._index.nprobe  # noqa: SLF001 - as calibrated
    assert loaded._tombstones == set(range(1, 51))  # noqa: SLF001
    assert (_top_ids(loaded, vectors[:500]) == _top_ids(index, vectors[:500])).all()
    loaded.remove([60])
    loaded.add(np.array([9_999]), np.array([9_999]), vectors[59:60])
    assert _top_ids(loaded, vectors[59:60])[0] == 9_999


def test_file_backed_table_reads_agree_with_the_table_in_ram(tmp_path, monkeypatch):
    from app.search import vectors as vectors_module
    from app.search.vectors import VectorTable

    monkeypatch.setattr(vectors_module, "KNN_BLOCK", 700)  # several blocks, a short last one
    monkeypatch.setattr(vectors_module, "GATHER_ROWS", 64)  # spans for large reads, rows for small ones
    monkeypatch.setattr(vectors_module, "SPAN_BYTES", 4096)  # spans read in several preadv calls
    ids, subjects, vectors = clustered(3000, seed=6)
    ram, disk = VectorTable(DIM), VectorTable(DIM)
    disk.to_disk(str(tmp_path))
    for table in (ram, disk):
        table.add(ids[:1000], subjects[:1000], vectors[:1000])
        table.add(ids[1000:], subjects[1000:], vectors[1000:])  # grows the file in place
        table.remove(list(range(5, 400, 7)))
    assert disk.on_disk and not ram.on_disk
    queries = views(vectors, 40)
    for k in (1, 5):
        assert np.array_equal(disk.knn(queries, k)[1], ram.knn(queries, k)[1])
    for rows in (np.arange(100, 900), np.array([2, 1500, 7]), np.arange(0, len(ram), 50)):
        assert np.array_equal(disk.vectors_at(rows), ram.vectors_at(rows))
    assert np.array_equal(disk.span(10, 2000), ram.live_vectors()[10:2000])

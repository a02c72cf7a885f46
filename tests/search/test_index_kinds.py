"""Every index kind at small sizes: recall@1 against exact search, deletions, per-subject results, memory."""

from __future__ import annotations

import numpy as np
import pytest

from app.search import factory
from app.search.factory import IVF_MIN_TRAIN, IndexParams, resolve_kind
from app.search.gallery_index import GalleryIndex
from tests.search.conftest import DIM, clustered, exact_top1, views

KINDS = ["flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw", "auto"]


@pytest.mark.parametrize("kind", KINDS)
def test_kind_recall_deletions_and_memory(kind):
    n = 2 * IVF_MIN_TRAIN + 1000
    ids, subjects, vectors = clustered(n)
    params = IndexParams(kind=kind, use_gpu=False, exact_max_faces=1000, nprobe=8)
    index = GalleryIndex(DIM, params)
    index.add(ids, subjects, vectors)
    index.wait_idle()
    expected = {"auto": "ivf_pqfs"}.get(kind, kind)
    assert index.kind == expected

    if expected in factory.IVF_KINDS:  # nprobe was raised until the gallery's own faces found their subject
        nprobe, reached = index.calibration
        assert index._index.nprobe == nprobe >= params.nprobe  # noqa: SLF001
        assert reached >= params.target_recall or nprobe == index._index.nlist  # noqa: SLF001

    queries = views(vectors, 300)
    truth = exact_top1(vectors, ids, queries)
    found = np.array([hits[0].face_id for hits in index.search(queries, 1)])
    recall = float(np.mean(found == truth))
    assert recall >= (1.0 if kind == "flat" else 0.95), recall
    if kind in ("ivf_sq8", "ivf_pq", "ivf_pqfs", "auto"):  # re-ranked: similarities are the exact ones
        sims = [hits[0].similarity for hits in index.search(queries[:20], 1)]
        exact = [float(q @ vectors[f - 1]) for q, f in zip(queries[:20], found[:20], strict=True)]
        assert np.allclose(sims, exact, atol=1e-5)

    gone = list(range(1, 1001))  # > 20 %: HNSW and fast-scan purge their tombstones by rebuilding
    index.remove(gone)
    index.remove_subject(int(subjects[2000]))
    index.wait_idle()
    assert index.size == n - 1000 - 4
    for hits in index.search(vectors[:1200], 5):
        assert all(h.face_id > 1000 and h.subject_id != subjects[2000] for h in hits)
        assert len({h.subject_id for h in hits}) == len(hits) == 5
    assert index.search(vectors[1500:1501], 1)[0][0].face_id == 1501

    per_face = index.memory_bytes() / index.size
    assert per_face <= factory.bytes_per_face(expected, params, DIM) * 1.6 + 64, per_face


def test_compressed_kinds_hold_fewer_bytes_than_float_indexes():
    params = IndexParams(use_gpu=False)
    kinds = ("flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw")
    sizes = {k: factory.bytes_per_face(k, params, 512) for k in kinds}
    assert sizes["ivf_pqfs"] <= sizes["ivf_pq"] < sizes["ivf_sq8"] < sizes["ivf"] < sizes["hnsw"]
    assert sizes["ivf_sq8"] - sizes["flat"] == 512 and sizes["ivf_pq"] - sizes["flat"] == 64
    assert sizes["ivf_pqfs"] - sizes["flat"] == 64  # 128 sub-quantisers of 4 bits


def test_auto_picks_exact_then_fastscan_by_size_and_budget():
    params = IndexParams(kind="auto", memory_budget_mb=64, exact_max_faces=10_000)
    assert resolve_kind(params, 1000, 128) == ("flat", False)
    assert resolve_kind(params, 50_000, 128) == ("ivf_pqfs", False)  # 50k × 560 B = 27 MiB: fits
    assert not factory.floats_on_disk(params, 50_000, 128)
    assert resolve_kind(params, 1_000_000, 128) == ("ivf_pqfs", False)  # floats on disk: 48 B/face in RAM
    assert factory.floats_on_disk(params, 1_000_000, 128)
    kind, over = resolve_kind(params, 10_000_000, 128)
    assert kind == "ivf_pqfs" and over  # even the codes and bookkeeping are 480 MB, over 64 MiB
    assert resolve_kind(IndexParams(kind="ivf_pq"), IVF_MIN_TRAIN - 1, 128) == ("flat", False)


def test_nlist_grows_with_the_gallery_and_training_sample_is_bounded():
    assert factory.nlist_for(10_000) < factory.nlist_for(1_000_000) < factory.nlist_for(10_000_000)
    assert factory.nlist_for(10_000_000) == 1024 and factory.nlist_for(1_000_000) == 256
    params = IndexParams()
    assert factory.training_sample_size(params, 10_000_000) == params.train_per_list * 1024
    assert factory.training_sample_size(params, 10**9) == 40 * 4096 <= params.train_max_sample
    assert factory.nprobe_for(params, 4096) == 32  # without calibration (target_recall=0)


def test_results_are_per_subject_when_one_subject_fills_the_candidates():
    ids, _, vectors = clustered(IVF_MIN_TRAIN * 2)
    subjects = np.where(ids <= 400, 0, ids)  # the first 400 faces (100 identities) all belong to subject 0
    index = GalleryIndex(DIM, IndexParams(kind="ivf_sq8", use_gpu=False, rerank=16))
    index.add(ids, subjects, vectors)
    hits = index.search(vectors[:1], 4)[0]
    assert hits[0].subject_id == 0 and len({h.subject_id for h in hits}) == 4
    assert hits[0].similarity >= hits[1].similarity >= hits[3].similarity

"""Re-ranking as deep as the codes' error needs (``app.search.rerank``, issue 16).

Queries without a close match (a stranger, or a real probe whose enrolled photo looks little like it) have
their best face among many strangers at nearly the same similarity; 4-bit codes cannot order such near
ties, so a fixed re-ranking depth misses exact search's best face. Queries with a close match must not pay
for the deeper search.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app.search import rerank
from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.search.snapshots import SnapshotStore
from tests.search.conftest import DIM, clustered, exact_top1, unit, views

N = 20_000


def _index(**settings) -> tuple[GalleryIndex, tuple]:
    data = clustered(N, seed=5)
    # every list searched (nprobe = nlist) and no calibration: only the re-ranking decides recall here
    params = IndexParams(kind="ivf_pqfs", use_gpu=False, target_recall=0, nprobe=4096, **settings)
    index = GalleryIndex(DIM, params)
    index.add(*data)
    index.wait_idle()
    assert index.kind == "ivf_pqfs"
    return index, data


def _recall(index: GalleryIndex, data: tuple, queries: np.ndarray) -> float:
    ids, _, vectors = data
    found = np.array([hits[0].face_id for hits in index.search(queries, 1)])
    return float(np.mean(found == exact_top1(vectors, ids, queries)))


def test_near_ties_are_searched_deeper_until_exact_searchs_best_face_is_found():
    strangers = unit(np.random.default_rng(9).standard_normal((200, DIM)))
    fixed, data = _index(rerank_max=64)  # as before: the top 64 re-ranked, whatever the doubt
    adaptive, _ = _index()
    fixed_recall, adaptive_recall = _recall(fixed, data, strangers), _recall(adaptive, data, strangers)
    assert fixed_recall < 0.8  # the near ties the codes cannot order (0.65 when written)
    assert adaptive_recall >= 0.98
    assert adaptive.deepened > 0 and fixed.deepened == 0


def test_queries_with_a_close_match_stay_at_the_fixed_depth():
    index, data = _index()
    queries = views(data[2], 200)
    assert _recall(index, data, queries) >= 0.98
    assert index.deepened <= 10  # at most 5 % paid for a deeper search (2 of 200 when written)


def test_unsure_compares_the_last_candidates_score_plus_the_codes_error_with_the_best():
    approx = np.array([[0.50, 0.40, 0.30, 0.20], [0.50, 0.40, 0.30, 0.20], [0.5, 0.4, 0.3, 0.2]])
    ids = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, -1]])
    sure = np.array([0.50, 0.41, 0.29, 0.21])  # the codes err by ~0.01: nothing below 0.20 reaches 0.50
    doubt = np.array([0.30, 0.45, 0.25, 0.22])  # they err by up to 0.2: a face below could beat 0.45
    sims = np.stack([sure, doubt, doubt])
    assert rerank.unsure(approx, ids, sims).tolist() == [False, True, False]  # last row: nothing more


def test_weak_matches_are_searched_over_every_list(tmp_path):
    data = clustered(N, seed=5)
    ids, _, vectors = data
    # few lists searched (calibrated to a low target), so a weak match often sits in a list not searched
    index = GalleryIndex(DIM, IndexParams(kind="ivf_pqfs", use_gpu=False, target_recall=0.9, nprobe=1))
    index.add(*data)
    index.wait_idle()
    nprobe, _ = index.calibration
    assert nprobe < index._index.nlist and 0.3 < index.weak < 0.9  # noqa: SLF001 - measured on the gallery
    rng = np.random.default_rng(3)
    weak = unit(vectors[:300] + 2.0 * rng.standard_normal((300, DIM)) / np.sqrt(DIM))  # ~0.45 to their face
    level, index.weak = index.weak, -np.inf
    narrow = _recall(index, data, weak)
    index.weak = level
    wide = _recall(index, data, weak)
    assert index.widened > 0
    assert wide >= narrow + 0.1  # 0.71 → 0.88 when written
    gallery = SimpleNamespace(id=1, name="g", created_at="t", embedding_size=DIM, index_kind="ivf_pqfs")
    store = SnapshotStore(tmp_path)
    store.save(gallery, index, 5)
    loaded, _ = store.load(gallery, index.params)
    assert loaded.weak == index.weak  # a restart searches as wide as before

"""Choosing and building FAISS indexes over L2-normalised vectors (inner product = cosine similarity).

Kinds (``IndexParams.kind``):

- ``flat``: exact search; no FAISS index at all on CPU — brute force (``faiss.knn``, BLAS) over the gallery's
  vector table, so the floats are held once.
- ``ivf``: inverted lists over float vectors (IndexIVFFlat).
- ``ivf_sq8``: inverted lists over 8-bit scalar-quantised codes (1 byte per dimension); the top candidates
  are re-ranked exactly from the float vectors.
- ``ivf_pq``: inverted lists over product-quantised codes (``pq_m`` bytes per face), re-ranked likewise.
- ``hnsw``: graph search (IndexHNSWFlat), built under a time budget; FAISS cannot remove from it, so
  deletions are tombstoned and the graph is rebuilt past a tombstone ratio.
- ``auto``: exact search while the gallery is small enough for it to be fast (``exact_max_faces``), then
  IVF-SQ8 while float vectors + codes fit the memory budget, IVF-PQ beyond (a warning when even that
  does not fit: the float table stays in RAM — keeping it on disk is not done).

IVF kinds are trained on a bounded random sample (``train_per_list`` vectors per list, at most
``train_max_sample``, ``train_niter`` k-means iterations), with ``nlist`` chosen by gallery size; they search
exactly until the gallery holds ``IVF_MIN_TRAIN`` faces.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import faiss
import numpy as np

log = logging.getLogger("marginface.search")

IVF_MIN_TRAIN = 2048
INDEX_KINDS = ("flat", "ivf", "ivf_sq8", "ivf_pq", "hnsw", "auto")
IVF_KINDS = ("ivf", "ivf_sq8", "ivf_pq")
COMPRESSED_KINDS = ("ivf_sq8", "ivf_pq")
BOOKKEEPING_BYTES = 32  # per face: table id + subject + row map + the IVF list's id


class BuildBudgetExceeded(RuntimeError):
    """An index build would run past its time budget."""


@dataclass(frozen=True)
class IndexParams:
    kind: str = "flat"
    nprobe: int = 16
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    use_gpu: bool = True
    hnsw_ef_construction: int = 40
    hnsw_build_budget_s: float = 300.0
    memory_budget_mb: int = 8192  # per gallery: vectors, codes and bookkeeping held in RAM
    exact_max_faces: int = 0  # auto: exact search up to this size; 0 = 2**25 / dim (262k at 128-d)
    rerank: int = 64  # compressed kinds: candidates re-ranked exactly from the float vectors
    pq_m: int = 0  # PQ bytes per face; 0 = dim / 4, at most 64 (128-d: 32; 512-d: 64)
    train_per_list: int = 40
    train_max_sample: int = 200_000
    train_niter: int = 10
    retrain_growth: float = 2.0  # IVF kinds retrain once the gallery has grown this much since training
    background_min: int = 20_000  # rebuilds of galleries at least this large run in a background thread
    target_recall: float = 0.99  # IVF kinds: nprobe raised after each build to reach this recall@1 (0: off)
    calibration_queries: int = 200


_gpu_resources = None


def gpu_available(params: IndexParams) -> bool:
    """True when a GPU index should be used: asked for, faiss built with GPU support and a GPU present."""
    if not params.use_gpu or not hasattr(faiss, "StandardGpuResources"):
        return False
    return faiss.get_num_gpus() > 0


def _to_gpu(index: faiss.Index) -> faiss.Index:
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_gpu_resources, 0, index)


def exact_max(params: IndexParams, dim: int) -> int:
    return params.exact_max_faces or (1 << 25) // dim


def pq_m(params: IndexParams, dim: int) -> int:
    """Sub-quantisers for PQ: a divisor of ``dim``, ~4 dimensions each, at most 64."""
    m = params.pq_m or min(64, max(1, dim // 4))
    while dim % m:
        m -= 1
    return m


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` faces: ~√n/4 rounded to a power of two, 16…4096, ≥ 39 vectors a list.

    Few, long lists: adding n faces costs n × nlist dot products (the build bound), while at the high
    recall face search needs a query scans a similar share of the gallery whatever nlist is."""
    nlist = 2 ** round(math.log2(max(math.sqrt(max(n, 1)) / 4, 1)))
    return int(max(16, min(nlist, 4096, max(16, n // 39))))


def nprobe_for(params: IndexParams, nlist: int) -> int:
    """Lists searched: the setting, raised with nlist (1/128 of the lists) so recall holds at scale."""
    return int(min(nlist, max(params.nprobe, nlist // 128)))


def bytes_per_face(kind: str, params: IndexParams, dim: int) -> int:
    """RAM per face of a kind (float table + index codes + bookkeeping), for ``auto`` and reports."""
    floats = 4 * dim
    codes = {"flat": 0, "ivf": 4 * dim, "ivf_sq8": dim, "ivf_pq": pq_m(params, dim),
             "hnsw": 4 * dim + 8 * params.hnsw_m + 8}[kind]
    return floats + codes + BOOKKEEPING_BYTES


def resolve_kind(params: IndexParams, n: int, dim: int) -> tuple[str, bool]:
    """(concrete kind, over the memory budget) for ``n`` faces; IVF kinds search exactly until trained."""
    kind = params.kind
    if kind == "auto":
        budget = params.memory_budget_mb * 2**20
        if n <= exact_max(params, dim) and n * bytes_per_face("flat", params, dim) <= budget:
            kind = "flat"
        elif n * bytes_per_face("ivf_sq8", params, dim) <= budget:
            kind = "ivf_sq8"
        else:
            over = n * bytes_per_face("ivf_pq", params, dim) > budget  # the float table itself is too big
            return ("ivf_pq" if n >= IVF_MIN_TRAIN else "flat"), over
    if kind in IVF_KINDS and n < IVF_MIN_TRAIN:
        return "flat", False
    return kind, False


def make_trained(kind: str, params: IndexParams, dim: int, n: int, sample: np.ndarray) -> faiss.Index | None:
    """An empty index of ``kind`` trained on ``sample`` (None for exact search on CPU)."""
    on_gpu = gpu_available(params) and kind in ("flat", *IVF_KINDS)
    if kind == "flat":
        return faiss.IndexIDMap(_to_gpu(faiss.IndexFlatIP(dim))) if on_gpu else None
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = params.hnsw_ef_construction
        inner.hnsw.efSearch = params.hnsw_ef_search
        return faiss.IndexIDMap2(inner)
    nlist = nlist_for(n)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf_sq8":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT, False
        )
    elif kind == "ivf_pq":
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m(params, dim), 8, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.cp.niter = params.train_niter
    if kind == "ivf_pq":
        index.pq.cp.niter = params.train_niter
    index.cp.max_points_per_centroid = max(params.train_per_list, 39)
    started = time.perf_counter()
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = nprobe_for(params, nlist)
    log.info("%s: nlist=%d trained on %d vectors in %.1f s", kind, nlist, len(sample),
             time.perf_counter() - started)
    return _to_gpu(index) if on_gpu else index


def training_sample_size(params: IndexParams, n: int) -> int:
    return int(min(n, max(params.train_per_list * nlist_for(n), 10_000), params.train_max_sample))


def add_bounded(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, deadline: float | None) -> None:
    """Add in chunks; past ``deadline`` (HNSW builds) raise ``BuildBudgetExceeded``."""
    step = 50_000
    for start in range(0, len(ids), step):
        index.add_with_ids(vectors[start : start + step], ids[start : start + step])
        if deadline is not None and time.perf_counter() > deadline and start + step < len(ids):
            raise BuildBudgetExceeded(f"build past its {time.perf_counter() - deadline:.0f} s budget")


def removable(index: faiss.Index | None) -> bool:
    """Whether ``remove_ids`` works (HNSW and GPU indexes: no; the caller tombstones)."""
    if index is None:
        return True
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return not isinstance(inner, faiss.IndexHNSW) and not type(inner).__name__.startswith("Gpu")


def describe(index: faiss.Index | None) -> str:
    """The FAISS class searched (``IndexFlatIP`` for exact search, done by ``faiss.knn`` over the table)."""
    if index is None:
        return "IndexFlatIP"
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else faiss.downcast_index(index)
    return type(inner).__name__


def details(index: faiss.Index | None) -> dict[str, int]:
    """Search parameters of an IVF or HNSW index (empty for exact search)."""
    if index is None:
        return {}
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return {"nlist": int(inner.nlist), "nprobe": int(inner.nprobe)}
    if isinstance(inner, faiss.IndexHNSW):
        return {"ef_search": int(inner.hnsw.efSearch)}
    return {}


def index_bytes(index: faiss.Index | None, dim: int) -> int:
    """RAM held by the FAISS index itself (codes, ids, centroids, graph links)."""
    if index is None:
        return 0
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else faiss.downcast_index(index)
    n = index.ntotal
    if isinstance(inner, faiss.IndexIVF):
        return int(n * (inner.code_size + 8) + inner.nlist * dim * 4)
    if isinstance(inner, faiss.IndexHNSW):
        return int(n * (4 * dim + 8 + 4 * inner.hnsw.nb_neighbors(0)))
    return int(n * (4 * dim + 8))

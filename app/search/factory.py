"""Choosing and building FAISS indexes over L2-normalised vectors (inner product = cosine similarity).

Kinds (``IndexParams.kind``):

- ``flat``: exact search; no FAISS index at all on CPU — brute force (``faiss.knn``, BLAS) over the gallery's
  vector table, so the floats are held once.
- ``ivf``: inverted lists over float vectors (IndexIVFFlat).
- ``ivf_sq8``: inverted lists over 8-bit scalar-quantised codes (1 byte per dimension); the top candidates
  are re-ranked exactly from the float vectors.
- ``ivf_pq``: inverted lists over product-quantised codes (``pq_m`` bytes per face), re-ranked likewise.
- ``ivf_pqfs``: inverted lists over 4-bit PQ codes searched with FAISS fast-scan (IndexIVFPQFastScan: SIMD
  look-up tables, ``dim / 8`` bytes per face), re-ranked likewise: at the same ``nprobe`` the same recall
  as IVF-SQ8 after re-ranking, at 1/8 of the bytes scanned. Removing from it is tombstoned (FAISS 1.15's
  ``remove_ids`` on fast-scan lists leaves later additions with wrong codes).
- ``hnsw``: graph search (IndexHNSWFlat), built under a time budget; FAISS cannot remove from it, so
  deletions are tombstoned and the graph is rebuilt past a tombstone ratio.
- ``auto``: exact search while the gallery is small enough for it to be fast (``exact_max_faces``), then
  IVF-PQ fast-scan. When the float table (kept for re-ranking) does not fit the memory budget beside the
  codes it is kept in a memory-mapped file under ``vectors_dir`` instead (``floats_on_disk``): only codes
  and bookkeeping count against the budget, the page cache holds what it can of the floats.

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
INDEX_KINDS = ("flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw", "auto")
IVF_KINDS = ("ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs")
COMPRESSED_KINDS = ("ivf_sq8", "ivf_pq", "ivf_pqfs")
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
    rerank_max: int = 4096  # … and up to this many where the codes cannot tell the best (app.search.rerank)
    pq_m: int = 0  # PQ bytes per face; 0 = dim / 4, at most 64 (128-d: 32; 512-d: 64)
    pqfs_m: int = 0  # fast-scan PQ: 4-bit sub-quantisers; 0 = dim / 4 (128-d: 16 bytes; 512-d: 64 bytes)
    vectors_dir: str = ""  # float tables over the memory budget are memory-mapped here ("" = temp dir)
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


def pqfs_m(params: IndexParams, dim: int) -> int:
    """4-bit sub-quantisers for fast-scan PQ: an even divisor of ``dim``, ~4 dimensions each."""
    m = params.pqfs_m or max(2, dim // 4)
    while dim % m or m % 2:
        m -= 1
    return max(m, 1)


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` faces: ~√n/4 rounded to a power of two, 16…4096, ≥ 39 vectors a list.

    Few, long lists: adding n faces costs n × nlist dot products (the build bound), while at the high
    recall face search needs a query scans a similar share of the gallery whatever nlist is (measured
    on the clustered synthetic gallery, 1M × 128, fast-scan + re-ranking: a quarter of the gallery scanned
    gave recall@1 0.93 with 256 lists, 0.96 with 1024 and 0.91 with 4096)."""
    nlist = 2 ** round(math.log2(max(math.sqrt(max(n, 1)) / 4, 1)))
    return int(max(16, min(nlist, 4096, max(16, n // 39))))


def nprobe_for(params: IndexParams, nlist: int) -> int:
    """Lists searched: the setting, raised with nlist (1/128 of the lists) so recall holds at scale."""
    return int(min(nlist, max(params.nprobe, nlist // 128)))


def bytes_per_face(kind: str, params: IndexParams, dim: int, on_disk: bool = False) -> int:
    """RAM per face of a kind (float table unless ``on_disk`` + index codes + bookkeeping)."""
    floats = 0 if on_disk else 4 * dim
    codes = {"flat": 0, "ivf": 4 * dim, "ivf_sq8": dim, "ivf_pq": pq_m(params, dim),
             "ivf_pqfs": pqfs_m(params, dim) // 2, "hnsw": 4 * dim + 8 * params.hnsw_m + 8}[kind]
    return floats + codes + BOOKKEEPING_BYTES


def floats_on_disk(params: IndexParams, n: int, dim: int) -> bool:
    """Whether the float table of ``n`` faces goes to a memory-mapped file: compressed kinds (which only
    read the floats to re-rank a few candidates) whose floats + codes exceed the memory budget."""
    kind = resolve_kind(params, n, dim)[0]
    budget = params.memory_budget_mb * 2**20
    return kind in COMPRESSED_KINDS and n * bytes_per_face(kind, params, dim) > budget


def resolve_kind(params: IndexParams, n: int, dim: int) -> tuple[str, bool]:
    """(concrete kind, over the memory budget) for ``n`` faces; IVF kinds search exactly until trained."""
    kind = params.kind
    if kind == "auto":
        budget = params.memory_budget_mb * 2**20
        if n <= exact_max(params, dim) and n * bytes_per_face("flat", params, dim) <= budget:
            kind = "flat"
        else:  # floats on disk beyond the budget: only the codes and bookkeeping need to fit
            over = n * bytes_per_face("ivf_pqfs", params, dim, on_disk=True) > budget
            return ("ivf_pqfs" if n >= IVF_MIN_TRAIN else "flat"), over
    if kind in IVF_KINDS and n < IVF_MIN_TRAIN:
        return "flat", False
    on_disk = kind in COMPRESSED_KINDS
    return kind, n * bytes_per_face(kind, params, dim, on_disk) > params.memory_budget_mb * 2**20


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
    elif kind == "ivf_pqfs":
        index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, pqfs_m(params, dim), 4,
                                         faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.cp.niter = params.train_niter
    if kind in ("ivf_pq", "ivf_pqfs"):
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
    """Whether ``remove_ids`` works (HNSW, fast-scan and GPU indexes: no; the caller tombstones).

    Fast-scan: FAISS 1.15 removes the ids from a list but not their codes correctly, so faces added
    afterwards are found with other faces' codes (tests/search checks that tombstones avoid it)."""
    if index is None:
        return True
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, (faiss.IndexHNSW, faiss.IndexIVFFastScan)):
        return False
    return not type(inner).__name__.startswith("Gpu")


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

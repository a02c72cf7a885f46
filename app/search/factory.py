"""Building FAISS indexes over L2-normalised vectors (inner product = cosine similarity).

- ``flat``: exact search; supports removal (IndexIDMap2 over IndexFlatIP).
- ``ivf``: inverted lists (IndexIVFFlat, inner product); approximate, recall set by ``nprobe``; trained on the
  gallery's own vectors once it holds ``IVF_MIN_TRAIN`` faces (exact search until then); supports removal.
- ``hnsw``: graph search (IndexHNSWFlat); approximate, recall set by ``efSearch``; FAISS cannot remove
  from it, so deletions are tombstoned and filtered out, and the index is rebuilt past a tombstone ratio.
- on a GPU (faiss-gpu and ``faiss.get_num_gpus() > 0``) flat and IVF indexes are moved to the GPU; GPU
  indexes cannot remove either, so they use the same tombstones and rebuilds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import faiss
import numpy as np

log = logging.getLogger("marginface.search")

IVF_MIN_TRAIN = 2048


@dataclass(frozen=True)
class IndexParams:
    kind: str = "flat"
    nprobe: int = 16
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    use_gpu: bool = True


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


def build_index(
    params: IndexParams, dim: int, ids: np.ndarray, vectors: np.ndarray
) -> tuple[faiss.Index, bool]:
    """A filled index and whether it supports ``remove_ids`` (False: the caller tombstones deletions)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    on_gpu = gpu_available(params) and params.kind in ("flat", "ivf")
    if params.kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efSearch = params.hnsw_ef_search
        index, removable = faiss.IndexIDMap2(inner), False
    elif params.kind == "ivf" and len(ids) >= IVF_MIN_TRAIN:
        nlist = int(min(max(16, 4 * math.sqrt(len(ids))), len(ids) // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(params.nprobe, nlist)
        removable = True
        if on_gpu:
            index, removable = _to_gpu(index), False
    else:
        if on_gpu:
            inner = _to_gpu(faiss.IndexFlatIP(dim))
            index, removable = faiss.IndexIDMap(inner), False
        else:
            index, removable = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), True
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index, removable


def describe(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return type(inner).__name__

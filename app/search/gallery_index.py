"""One gallery's search index: FAISS over face ids, a face→subject map, and per-subject results."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from app.search.factory import IVF_MIN_TRAIN, IndexParams, build_index, describe
from app.search.vectors import VectorTable


@dataclass(frozen=True)
class Hit:
    """The best stored face of one subject for one query."""

    subject_id: int
    face_id: int
    similarity: float


class GalleryIndex:
    """Thread-safe: writes (add/remove) and searches of one gallery are serialised by a lock.

    The vectors are also kept in a ``VectorTable`` so the FAISS index can be rebuilt without the store
    (IVF retraining as the gallery grows, tombstone purges for HNSW and GPU indexes).
    """

    def __init__(self, dim: int, params: IndexParams, rebuild_ratio: float = 0.2) -> None:
        self.dim = dim
        self.params = params
        self.rebuild_ratio = rebuild_ratio
        self._lock = threading.RLock()
        self._table = VectorTable(dim)
        self._subject_of: dict[int, int] = {}
        self._tombstones: set[int] = set()
        self._trained_at = 0
        self._index, self._removable = build_index(params, dim, np.empty(0, np.int64), np.empty((0, dim)))

    @property
    def size(self) -> int:
        """Live faces (tombstones excluded)."""
        return len(self._subject_of)

    @property
    def subjects(self) -> int:
        with self._lock:
            return len(set(self._subject_of.values()))

    def describe(self) -> str:
        return describe(self._index)

    def contains(self, face_id: int) -> bool:
        return face_id in self._subject_of

    def add(self, face_ids: np.ndarray, subject_ids: np.ndarray, vectors: np.ndarray) -> int:
        """Add faces not yet present (idempotent); returns how many were added."""
        with self._lock:
            keep = np.array([int(f) not in self._subject_of for f in face_ids], dtype=bool)
            if not keep.any():
                return 0
            ids, subs = np.asarray(face_ids, np.int64)[keep], np.asarray(subject_ids, np.int64)[keep]
            vecs = np.ascontiguousarray(np.asarray(vectors, np.float32).reshape(-1, self.dim)[keep])
            revived = self._tombstones.intersection(int(i) for i in ids)
            if revived:  # an id cannot be in a non-removable index twice
                self._rebuild()
            self._table.add(ids, vecs)
            self._subject_of.update(zip(ids.tolist(), subs.tolist(), strict=True))
            if self._needs_retrain():
                self._rebuild()
            else:
                self._index.add_with_ids(vecs, ids)
            return int(len(ids))

    def remove(self, face_ids: list[int]) -> int:
        """Remove faces (idempotent); returns how many were present."""
        with self._lock:
            present = [f for f in face_ids if f in self._subject_of]
            if not present:
                return 0
            for f in present:
                del self._subject_of[f]
            self._table.remove(present)
            if self._removable:
                self._index.remove_ids(np.asarray(present, dtype=np.int64))
            else:
                self._tombstones.update(present)
                if len(self._tombstones) > self.rebuild_ratio * max(self.size, 1):
                    self._rebuild()
            return len(present)

    def remove_subject(self, subject_id: int) -> int:
        with self._lock:
            return self.remove([f for f, s in self._subject_of.items() if s == subject_id])

    def face_ids(self) -> set[int]:
        with self._lock:
            return set(self._subject_of)

    def search(self, queries: np.ndarray, top_k: int) -> list[list[Hit]]:
        """For each query the ``top_k`` best subjects (best stored face each), best first.

        Searches deeper than ``top_k`` faces and widens until ``top_k`` distinct subjects are found
        or the whole gallery was seen.
        """
        queries = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        with self._lock:
            total = self._index.ntotal
            if total == 0 or self.size == 0:
                return [[] for _ in range(len(queries))]
            depth = min(total, max(4 * top_k, 32) + len(self._tombstones))
            results: list[list[Hit]] = []
            sims, ids = self._index.search(queries, depth)
            for row in range(len(queries)):
                row_sims, row_ids, row_depth = sims[row], ids[row], depth
                while True:
                    hits = self._collapse(row_sims, row_ids, top_k)
                    if len(hits) >= top_k or row_depth >= total:
                        break
                    row_depth = min(total, row_depth * 4)
                    s, i = self._index.search(queries[row : row + 1], row_depth)
                    row_sims, row_ids = s[0], i[0]
                results.append(hits)
            return results

    def _collapse(self, sims: np.ndarray, ids: np.ndarray, top_k: int) -> list[Hit]:
        best: dict[int, Hit] = {}
        for sim, face_id in zip(sims.tolist(), ids.tolist(), strict=True):
            subject = self._subject_of.get(face_id)
            if face_id < 0 or subject is None or subject in best:
                continue  # padding, tombstone, or a worse face of a subject already seen (results are sorted)
            best[subject] = Hit(subject, face_id, float(sim))
            if len(best) == top_k:
                break
        return list(best.values())

    def _needs_retrain(self) -> bool:
        if self.params.kind != "ivf":
            return False
        if self._trained_at == 0:
            return self.size >= IVF_MIN_TRAIN
        return self.size >= 4 * self._trained_at

    def _rebuild(self) -> None:
        ids, vectors = self._table.all()
        self._index, self._removable = build_index(self.params, self.dim, ids, vectors)
        self._tombstones.clear()
        if self.params.kind == "ivf" and len(ids) >= IVF_MIN_TRAIN:
            self._trained_at = len(ids)

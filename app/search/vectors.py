"""A growable id → vector table (swap-remove), used to rebuild FAISS indexes without the store."""

from __future__ import annotations

import numpy as np


class VectorTable:
    """Rows of float32 vectors addressed by int64 ids; amortised O(1) add and remove."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._ids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._count = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        n = len(ids)
        needed = self._count + n
        if needed > len(self._ids):
            capacity = max(needed, 2 * len(self._ids), 1024)
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_vectors = np.empty((capacity, self.dim), dtype=np.float32)
            grown_ids[: self._count] = self._ids[: self._count]
            grown_vectors[: self._count] = self._vectors[: self._count]
            self._ids, self._vectors = grown_ids, grown_vectors
        self._ids[self._count : needed] = ids
        self._vectors[self._count : needed] = vectors
        for offset, face_id in enumerate(np.asarray(ids).tolist()):
            self._row_of[face_id] = self._count + offset
        self._count = needed

    def remove(self, ids: list[int]) -> None:
        for face_id in ids:
            row = self._row_of.pop(face_id, None)
            if row is None:
                continue
            last = self._count - 1
            if row != last:
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._vectors[row] = self._vectors[last]
                self._row_of[moved] = row
            self._count = last

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        return self._ids[: self._count].copy(), self._vectors[: self._count].copy()

"""Numpy-backed bookkeeping for large galleries: an id → int map and an id → vector table.

Python dicts cost ~100 bytes per entry (10M faces: ~1 GB per dict); face ids come from the store's
autoincrement and are dense, so they index numpy arrays directly (ids far beyond the dense range fall back
to a dict). The float vectors can live in a memory-mapped, already-unlinked temporary file
(``VectorTable.to_disk``) when they do not fit the memory budget: the page cache then holds what it can.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

import numpy as np

COPY_ROWS = 1 << 18  # rows copied at a time into a file-backed table
GATHER_ROWS = 1 << 17  # file-backed tables: this many rows or more, densely spread, are read as one span
SPAN_BYTES = 1 << 30  # one preadv call reads at most this
KNN_BLOCK = 1 << 19  # rows of a file-backed table searched exactly at a time

ABSENT = -1


class IdMap:
    """int64 id → int64 value (``ABSENT`` when missing); vectorised get/set/delete."""

    def __init__(self) -> None:
        self._values = np.full(0, ABSENT, dtype=np.int64)
        self._sparse: dict[int, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _dense_limit(self) -> int:
        return max(1 << 20, 8 * self._count)

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.full(len(ids), ABSENT, dtype=np.int64)
        dense = (ids >= 0) & (ids < len(self._values))
        out[dense] = self._values[ids[dense]]
        if self._sparse:
            for i in np.nonzero(~dense)[0].tolist():
                out[i] = self._sparse.get(int(ids[i]), ABSENT)
        return out

    def get_one(self, face_id: int) -> int:
        return int(self.get(np.array([face_id]))[0])

    def set(self, ids: np.ndarray, values: np.ndarray) -> None:
        """Set values; ids must be unique within the call."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.int64).reshape(-1)
        if not len(ids):
            return
        fresh = int(np.sum(self.get(ids) == ABSENT))
        top = int(ids.max())
        if top >= len(self._values) and top < self._dense_limit() + len(ids):
            grown = np.full(max(top + 1, 2 * len(self._values), 1024), ABSENT, dtype=np.int64)
            grown[: len(self._values)] = self._values
            self._values = grown
        dense = (ids >= 0) & (ids < len(self._values))
        self._values[ids[dense]] = values[dense]
        for face_id, value in zip(ids[~dense].tolist(), values[~dense].tolist(), strict=True):
            self._sparse[face_id] = value
        self._count += fresh

    def delete(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        present = self.get(ids) != ABSENT
        ids = np.unique(ids[present])
        dense = ids < len(self._values)
        self._values[ids[dense]] = ABSENT
        for face_id in ids[~dense].tolist():
            self._sparse.pop(face_id, None)
        self._count -= len(ids)

    def keys(self) -> np.ndarray:
        dense = np.nonzero(self._values != ABSENT)[0].astype(np.int64)
        if not self._sparse:
            return dense
        return np.concatenate([dense, np.fromiter(self._sparse, dtype=np.int64)])

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        keys = self.keys()
        return keys, self.get(keys)

    def keys_with_value(self, value: int) -> np.ndarray:
        dense = np.nonzero(self._values == value)[0].astype(np.int64)
        extra = [k for k, v in self._sparse.items() if v == value]
        return np.concatenate([dense, np.array(extra, dtype=np.int64)]) if extra else dense

    def nbytes(self) -> int:
        return int(self._values.nbytes) + 100 * len(self._sparse)


class VectorTable:
    """Rows of (id, subject, float32 vector) addressed by id; amortised O(1) add and swap-remove.

    Live rows are always ``[0, len)``, so exact search runs over one contiguous block.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._file: IO[bytes] | None = None
        self._ids = np.empty(0, dtype=np.int64)
        self._subjects = np.empty(0, dtype=np.int64)
        self._vectors: np.ndarray = self._allocate(0)
        self._count = 0
        self._row_of = IdMap()

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def to_disk(self, directory: str = "") -> None:
        """Move the float vectors into a memory-mapped temporary file under ``directory`` (once)."""
        if self._file is not None:
            return
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory or None, prefix="marginface-vectors-")
        old = self._vectors
        self._vectors = self._allocate(len(self._ids))
        for start in range(0, self._count, COPY_ROWS):
            self._write(start, old[start : min(start + COPY_ROWS, self._count)])

    def _allocate(self, capacity: int) -> np.ndarray:
        if self._file is None:
            return np.empty((capacity, self.dim), dtype=np.float32)
        self._file.truncate(max(capacity, 1) * self.dim * 4)  # grows in place: the rows already there stay
        return np.memmap(self._file, np.float32, "r+", shape=(max(capacity, 1), self.dim))[:capacity]

    def __len__(self) -> int:
        return self._count

    def reserve(self, capacity: int) -> None:
        if capacity > len(self._ids):
            self._grow(capacity)

    def add(self, ids: np.ndarray, subjects: np.ndarray, vectors: np.ndarray) -> None:
        """Append rows; ids must be new and unique."""
        n = len(ids)
        needed = self._count + n
        if needed > len(self._ids):
            self._grow(max(needed, 2 * len(self._ids), 1024))
        self._ids[self._count : needed] = ids
        self._subjects[self._count : needed] = subjects
        self._write(self._count, vectors)
        self._row_of.set(np.asarray(ids, np.int64), np.arange(self._count, needed, dtype=np.int64))
        self._count = needed

    def _grow(self, capacity: int) -> None:
        grown_ids = np.empty(capacity, dtype=np.int64)
        grown_ids[: self._count] = self._ids[: self._count]
        grown_subjects = np.empty(capacity, dtype=np.int64)
        grown_subjects[: self._count] = self._subjects[: self._count]
        grown_vectors = self._allocate(capacity)
        if self._file is None:  # a file-backed table grew in place
            grown_vectors[: self._count] = self._vectors[: self._count]
        self._ids, self._subjects, self._vectors = grown_ids, grown_subjects, grown_vectors

    def remove(self, ids: list[int] | np.ndarray) -> None:
        for face_id in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            row = self._row_of.get_one(face_id)
            if row == ABSENT:
                continue
            self._row_of.delete(np.array([face_id]))
            last = self._count - 1
            if row != last:
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._subjects[row] = self._subjects[last]
                self._write(row, self.vectors_at(np.array([last])))
                self._row_of.set(np.array([moved]), np.array([row]))
            self._count = last

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The live (ids, subjects, vectors), without copies."""
        n = self._count
        return self._ids[:n], self._subjects[:n], self._vectors[:n]

    def load(self, ids: np.ndarray, subjects: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole table with these arrays (taken over, or copied into the file when on disk)."""
        self._ids = np.ascontiguousarray(ids, np.int64)
        self._subjects = np.ascontiguousarray(subjects, np.int64)
        self._count = len(self._ids)
        if self._file is None:
            self._vectors = np.ascontiguousarray(vectors, np.float32)
        else:
            self._vectors = self._allocate(self._count)
            for start in range(0, self._count, COPY_ROWS):
                self._write(start, vectors[start : start + COPY_ROWS])
        self._row_of = IdMap()
        self._row_of.set(self._ids, np.arange(self._count, dtype=np.int64))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row numbers of ``ids`` (``ABSENT`` for unknown ids)."""
        return self._row_of.get(ids)

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of table ``rows``. A file-backed table is read with ``preadv``, not through the mapping
        (a page fault reads the device's whole read-ahead window, 8 MiB here, around each 2 KiB row):
        a few rows (re-ranking candidates, samples) one by one, many rows as the span they lie in."""
        rows = np.asarray(rows)
        if self._file is None or rows.ndim != 1 or not len(rows):
            return np.asarray(self._vectors[rows])
        low, high = int(rows.min()), int(rows.max()) + 1
        if len(rows) >= GATHER_ROWS and high - low <= 4 * len(rows):
            return self.span(low, high)[rows - low]
        out = np.empty((len(rows), self.dim), np.float32)
        size, fd = 4 * self.dim, self._file.fileno()
        buffer = memoryview(out).cast("B")
        listed = rows.tolist()
        if len(listed) > 1:  # rows not in the page cache are then read in parallel, not one after another
            for row in listed:
                os.posix_fadvise(fd, row * size, size, os.POSIX_FADV_WILLNEED)
        for i, row in enumerate(listed):
            os.preadv(fd, [buffer[i * size : (i + 1) * size]], row * size)
        return out

    def _write(self, row: int, vectors: np.ndarray) -> None:
        """Store ``vectors`` from ``row`` on (a file-backed table: ``pwrite``, no faults on the mapping)."""
        if self._file is None:
            self._vectors[row : row + len(vectors)] = vectors
            return
        data = np.ascontiguousarray(vectors, np.float32).reshape(-1).view(np.uint8)
        offset, done = row * 4 * self.dim, 0
        while done < len(data):
            done += os.pwrite(self._file.fileno(), data[done : done + SPAN_BYTES], offset + done)

    def span(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a new array (a file-backed table: sequential ``preadv`` reads)."""
        if self._file is None:
            return np.array(self._vectors[start:stop])
        out = np.empty((stop - start, self.dim), np.float32)
        buffer, size, fd = memoryview(out).cast("B"), 4 * self.dim, self._file.fileno()
        for offset in range(0, len(buffer), SPAN_BYTES):
            piece = buffer[offset : offset + SPAN_BYTES]
            done = 0
            while done < len(piece):
                done += os.preadv(fd, [piece[done:]], start * size + offset + done)
        return out

    def knn(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (similarities, rows) of the ``k`` best live rows per query; one sequential pass."""
        import faiss

        n = self._count
        if self._file is None or n <= KNN_BLOCK:
            return faiss.knn(queries, self.live_vectors(), k, faiss.METRIC_INNER_PRODUCT)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        rows = np.full((len(queries), k), -1, np.int64)
        for start in range(0, n, KNN_BLOCK):
            block = self.span(start, min(n, start + KNN_BLOCK))
            s, r = faiss.knn(queries, block, min(k, len(block)), faiss.METRIC_INNER_PRODUCT)
            sims, rows = np.concatenate([sims, s], 1), np.concatenate([rows, r + start], 1)
            best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            sims, rows = np.take_along_axis(sims, best, 1), np.take_along_axis(rows, best, 1)
        return sims, rows

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        return self._ids[rows]

    def subjects_at(self, rows: np.ndarray) -> np.ndarray:
        return self._subjects[rows]

    def live_vectors(self) -> np.ndarray:
        """The live rows' vectors as one contiguous block (a view: valid until the next write)."""
        return self._vectors[: self._count]

    def ids(self) -> np.ndarray:
        return self._ids[: self._count].copy()

    def ids_of_subject(self, subject_id: int) -> np.ndarray:
        return self._ids[: self._count][self._subjects[: self._count] == subject_id].copy()

    def subject_count(self) -> int:
        return int(len(np.unique(self._subjects[: self._count])))

    def all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self._count
        return self._ids[:n].copy(), self._subjects[:n].copy(), np.array(self._vectors[:n])

    def sample(self, count: int, seed: int = 0) -> np.ndarray:
        """Up to ``count`` random rows (training data for IVF / PQ), sorted row order for paging."""
        if count >= self._count:
            return np.array(self._vectors[: self._count])
        rows = np.sort(np.random.default_rng(seed).choice(self._count, count, replace=False))
        return self.vectors_at(rows)

    def nbytes_in_ram(self) -> int:
        """Bytes held in RAM (a file-backed float table is not: the page cache holds it, reclaimably)."""
        floats = 0 if self._file is not None else self._vectors.nbytes
        return int(self._ids.nbytes + self._subjects.nbytes + floats + self._row_of.nbytes())

"""One gallery's search index: a vector table (the floats, face → subject) plus a FAISS index over it.

Rebuilds (IVF training and retraining as the gallery grows, ``auto`` switching kinds, HNSW tombstone purges)
build the new index outside the lock — in a background thread for large galleries — while searches answer
from the current one; writes made meanwhile are journaled and applied to the new index just before it is
swapped in under the lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np

from app.search import factory, rerank, tuning
from app.search.factory import IndexParams
from app.search.vectors import ABSENT, VectorTable

log = logging.getLogger("marginface.search")
FETCH_CHUNK = 262_144


@dataclass(frozen=True)
class Hit:
    """The best stored face of one subject for one query."""

    subject_id: int
    face_id: int
    similarity: float


class GalleryIndex:
    """Thread-safe: writes and searches are serialised by a lock that rebuilds hold only briefly."""

    backend = "faiss"

    def __init__(self, dim: int, params: IndexParams, rebuild_ratio: float = 0.2) -> None:
        self.dim = dim
        self.params = params
        self.rebuild_ratio = rebuild_ratio
        self._lock = threading.RLock()
        self._table = VectorTable(dim)
        self._kind = "flat" if params.kind != "hnsw" else "hnsw"
        self._index = factory.make_trained(self._kind, params, dim, 0, np.empty((0, dim), np.float32))
        self._removable = factory.removable(self._index)
        self._tombstones: set[int] = set()
        self._trained_at = 0
        self._journal: set[int] | None = None  # ids touched while a background build runs
        self._builder: threading.Thread | None = None
        self._bulk = False
        self._fallback: str | None = None
        self.builds = 0  # indexes swapped in (tests and the bench watch this)
        self.last_build_s, self.build_error = 0.0, None
        self.calibration: tuple[int, float] | None = None  # (nprobe, recall@1 it reached)
        self.weak = -np.inf  # a best face below this: searched over every list (app.search.rerank)
        self.deepened = self.widened = 0  # queries re-ranked deeper / searched wider (app.search.rerank)

    # introspection
    @property
    def size(self) -> int:
        """Live faces (tombstones excluded)."""
        return len(self._table)

    @property
    def subjects(self) -> int:
        with self._lock:
            return self._table.subject_count()

    @property
    def kind(self) -> str:
        """The concrete kind searched now (``flat`` while an IVF kind is untrained)."""
        return self._kind

    def describe(self) -> str:
        return factory.describe(self._index)

    def contains(self, face_id: int) -> bool:
        return self._table.rows(np.array([face_id]))[0] != ABSENT

    def face_ids(self) -> set[int]:
        with self._lock:
            return set(self._table.ids().tolist())

    def memory_bytes(self) -> int:
        """RAM of the float table, codes and bookkeeping."""
        with self._lock:
            return self._table.nbytes_in_ram() + factory.index_bytes(self._index, self.dim)

    def rebuilding(self) -> bool:
        return self._builder is not None and self._builder.is_alive()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for a background rebuild; True when none is running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (builder := self._builder) is not None and builder is not threading.current_thread():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            builder.join(left)
            if builder.is_alive():
                break
            with self._lock:
                if self._builder is builder:
                    self._builder = None
        return not self.rebuilding()

    # writes
    def reserve(self, n: int) -> None:
        """Pre-size the vector table for ``n`` faces (a bulk load then never copies it to grow)."""
        with self._lock:
            self._spill_if_over_budget(n)
            self._table.reserve(n)

    def _spill_if_over_budget(self, n: int) -> None:
        """Move the float table to a memory-mapped file once ``n`` faces' floats no longer fit the budget."""
        if not self._table.on_disk and factory.floats_on_disk(self.params, n, self.dim):
            log.info("float vectors of %d faces over the %d MiB budget: memory-mapped under %s", n,
                     self.params.memory_budget_mb, self.params.vectors_dir or "the temp dir")
            self._table.to_disk(self.params.vectors_dir)

    @property
    def floats_on_disk(self) -> bool:
        return self._table.on_disk

    @contextlib.contextmanager
    def bulk(self) -> Iterator[GalleryIndex]:
        """Load many faces: adds only fill the table (searches meanwhile are exact), one build at the end."""
        with self._lock:
            self.wait_idle()
            self._bulk = True
            if self._index is not None and self._kind != "hnsw":
                self._index, self._kind, self._removable, self._tombstones = None, "flat", True, set()
        try:
            yield self
        finally:
            with self._lock:
                self._bulk = False
                if self._index is None and self._target()[0] != "flat":
                    self._build(self._target()[0])  # in this thread: the caller waits for a loaded index

    def add(self, face_ids: np.ndarray, subject_ids: np.ndarray, vectors: np.ndarray) -> int:
        """Add faces not yet present (idempotent); returns how many were added."""
        ids = np.asarray(face_ids, np.int64).reshape(-1)
        subs = np.asarray(subject_ids, np.int64).reshape(-1)
        vecs = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        with self._lock:
            _, first = np.unique(ids, return_index=True)
            keep = np.zeros(len(ids), bool)
            keep[first] = True
            keep &= self._table.rows(ids) == ABSENT
            if not keep.any():
                return 0
            ids, subs, vecs = ids[keep], subs[keep], np.ascontiguousarray(vecs[keep])
            self._table.add(ids, subs, vecs)
            if self._journal is not None:
                self._journal.update(ids.tolist())
            if self._index is not None:
                revived = self._tombstones.intersection(ids.tolist())
                if revived:  # still in the graph with the same vector (face ids are never reused otherwise)
                    self._tombstones -= revived
                    fresh = ~np.isin(ids, np.fromiter(revived, np.int64))
                    ids, vecs = ids[fresh], vecs[fresh]
                if len(ids):
                    self._index.add_with_ids(vecs, ids)
            self._maybe_rebuild()
            return int(keep.sum())

    def remove(self, face_ids: list[int]) -> int:
        """Remove faces (idempotent); returns how many were present."""
        with self._lock:
            ids = np.unique(np.asarray(list(face_ids), np.int64))
            present = ids[self._table.rows(ids) != ABSENT] if len(ids) else ids
            if not len(present):
                return 0
            self._table.remove(present)
            if self._journal is not None:
                self._journal.update(present.tolist())
            if self._index is not None:
                if self._removable:
                    self._index.remove_ids(present)
                else:
                    self._tombstones.update(present.tolist())
            self._maybe_rebuild()
            return len(present)

    def remove_subject(self, subject_id: int) -> int:
        with self._lock:
            return self.remove(self._table.ids_of_subject(subject_id).tolist())

    # persistence (app.search.snapshots)
    def export_state(self) -> dict:
        """Views of the table and the FAISS index: valid while the caller blocks writes to this gallery."""
        with self._lock:
            ids, subjects, vectors = self._table.views()
            return {"ids": ids, "subjects": subjects, "vectors": vectors, "index": self._index,
                    "kind": self._kind, "trained_at": self._trained_at, "weak": self.weak,
                    "tombstones": np.fromiter(self._tombstones, np.int64, len(self._tombstones))}

    def import_state(self, state: dict) -> None:
        """Take over a saved state (a fresh index only); search parameters follow the current settings."""
        with self._lock:
            self._spill_if_over_budget(len(state["ids"]))
            self._table.load(state["ids"], state["subjects"], state["vectors"])
            index = state["index"]
            if isinstance(index, faiss.IndexIVF):
                if not self.params.target_recall:  # else: as calibrated when it was built
                    index.nprobe = factory.nprobe_for(self.params, index.nlist)
            elif isinstance(index, faiss.IndexIDMap) and isinstance(faiss.downcast_index(index.index),
                                                                    faiss.IndexHNSW):
                faiss.downcast_index(index.index).hnsw.efSearch = self.params.hnsw_ef_search
            self._index, self._kind, self._trained_at = index, state["kind"], int(state["trained_at"])
            self.weak = float(state.get("weak", -np.inf))
            self._removable = factory.removable(index)
            self._tombstones = set(state["tombstones"].tolist())

    # search
    def search(self, queries: np.ndarray, top_k: int) -> list[list[Hit]]:
        """For each query the ``top_k`` best subjects (best stored face each), best first: deeper than
        ``top_k`` faces, widened until ``top_k`` subjects or the whole gallery were seen; compressed kinds
        re-rank their candidates from the floats (``app.search.rerank``)."""
        queries = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        with self._lock:
            if self.size == 0:
                return [[] for _ in range(len(queries))]
            total = self.size + len(self._tombstones)
            depth = max(4 * top_k, 32)
            if self._kind in factory.COMPRESSED_KINDS:
                depth = max(depth, self.params.rerank)
            # tombstones take slots: HNSW digs past all, fast-scan at most twice as deep (then widened below)
            depth = min(total, depth + (len(self._tombstones) if self._kind == "hnsw" else
                                        min(len(self._tombstones), depth)))
            sims, rows = self._candidates(queries, depth)
            results: list[list[Hit]] = []
            for q in range(len(queries)):
                row_sims, row_rows, row_depth = sims[q], rows[q], depth
                while True:
                    hits = self._collapse(row_sims, row_rows, top_k)
                    if len(hits) >= top_k or row_depth >= total:
                        break
                    row_depth = min(total, row_depth * 4)
                    s, r = self._candidates(queries[q : q + 1], row_depth)
                    row_sims, row_rows = s[0], r[0]
                results.append(hits)
            return results

    def _candidates(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, table rows) best first; rows are ``ABSENT`` for padding and tombstones."""
        if self._index is None:  # exact: brute force over the contiguous live rows
            sims, rows = self._table.knn(queries, depth)
            return sims, rows.astype(np.int64)
        if self._kind in factory.COMPRESSED_KINDS:  # re-ranked exactly, deeper / wider where in doubt
            sims, rows, (deeper, wider) = rerank.rerank(self._index.search, self._table, queries, depth, max(
                depth, self.params.rerank_max), wide=rerank.every_list(self._index), weak=self.weak)
            self.deepened, self.widened = self.deepened + deeper, self.widened + wider
            return sims, rows
        sims, ids = self._index.search(queries, depth)
        rows = self._table.rows(ids.reshape(-1)).reshape(ids.shape)
        rows[ids < 0] = ABSENT
        return sims, rows

    def _collapse(self, sims: np.ndarray, rows: np.ndarray, top_k: int) -> list[Hit]:
        valid = rows != ABSENT
        sims, rows = sims[valid], rows[valid]
        subjects, ids = self._table.subjects_at(rows).tolist(), self._table.ids_at(rows).tolist()
        best: dict[int, Hit] = {}
        for sim, face_id, subject in zip(sims.tolist(), ids, subjects, strict=True):
            if subject in best:
                continue  # a worse face of a subject already seen (results are sorted)
            best[subject] = Hit(subject, face_id, float(sim))
            if len(best) == top_k:
                break
        return list(best.values())

    # rebuilds
    def _target(self) -> tuple[str, bool]:
        kind, over = factory.resolve_kind(self.params, self.size, self.dim)
        if kind == "hnsw" and self._fallback:
            return self._fallback, over  # an HNSW build ran past its budget: stay on IVF-SQ8
        return kind, over

    def _maybe_rebuild(self) -> None:
        self._spill_if_over_budget(self.size)
        if self._bulk or self.rebuilding():
            return
        target, over = self._target()
        need = target != self._kind
        if need and over:
            log.warning("gallery index of %d faces needs more than the %d MiB memory budget even as %s",
                        self.size, self.params.memory_budget_mb, target)
        if self._kind in factory.IVF_KINDS:
            need |= self.size >= self.params.retrain_growth * max(self._trained_at, 1)
        if not self._removable:
            need |= len(self._tombstones) > self.rebuild_ratio * max(self.size, 1)
        if need:
            self._start_build(target)

    def _start_build(self, target: str) -> None:
        if self.size < self.params.background_min:
            self._build(target)
            return
        self._journal = set()
        self._builder = threading.Thread(target=self._build_safely, args=(target,), daemon=True,
                                         name="marginface-index-build")
        self._builder.start()

    def rebuild(self, wait: bool = True) -> None:
        """Rebuild now (e.g. after a bulk load); with ``wait`` block until the new index is in place."""
        with self._lock:
            if not self.rebuilding():
                self._start_build(self._target()[0])
        if wait:
            self.wait_idle()

    def _build_safely(self, target: str) -> None:
        try:
            self._build(target)
        except factory.BuildBudgetExceeded as exc:
            log.warning("%s build over budget (%s): falling back to ivf_sq8", target, exc)
            self.build_error = str(exc)
            self._fallback = "ivf_sq8"
            self._build("ivf_sq8")
        except Exception as exc:  # noqa: BLE001 - searches go on from the current index
            log.exception("index build failed")
            self.build_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._journal = None

    def _build(self, target: str) -> None:
        started = time.perf_counter()
        with self._lock:
            snapshot = self._table.ids()
            n = len(snapshot)
            sample = self._table.sample(factory.training_sample_size(self.params, n)) \
                if target in factory.IVF_KINDS else np.empty((0, self.dim), np.float32)
        index = factory.make_trained(target, self.params, self.dim, n, sample)
        del sample
        added: list[np.ndarray] = []
        weak = -np.inf
        if index is not None:
            deadline = started + self.params.hnsw_build_budget_s if target == "hnsw" else None
            for start in range(0, n, FETCH_CHUNK):
                chunk = snapshot[start : start + FETCH_CHUNK]
                with self._lock:
                    rows = self._table.rows(chunk)
                    chunk = chunk[rows != ABSENT]
                    vecs = self._table.vectors_at(rows[rows != ABSENT])
                factory.add_bounded(index, chunk, vecs, deadline)
                added.append(chunk)
            if isinstance(index, faiss.IndexIVF) and self.params.target_recall > 0:
                depth = self.params.rerank if target in factory.COMPRESSED_KINDS else 1
                nprobe, recall, weak = tuning.calibrate_nprobe(
                    index, self._table, index.nprobe, self.params.target_recall,
                    self.params.calibration_queries, depth, self.params.rerank_max)
                self.calibration = (nprobe, recall)
        with self._lock:
            tombstones: set[int] = set()
            if index is not None:
                in_new = np.sort(np.concatenate(added)) if added else snapshot[:0]
                tombstones = self._apply_journal(index, in_new)
            self._journal = None
            self._index, self._kind, self.weak = index, target, weak
            self._removable = factory.removable(index)
            self._tombstones = tombstones
            self._trained_at = n if target in factory.IVF_KINDS else 0
            self.builds += 1
            self.last_build_s = time.perf_counter() - started
            self._builder = None if self._builder is threading.current_thread() else self._builder
            self._maybe_rebuild()  # the gallery may have grown past the next step while this one was built
        log.info("index %s over %d faces built in %.1f s", factory.describe(index), n, self.last_build_s)

    def _apply_journal(self, index: faiss.Index, in_new: np.ndarray) -> set[int]:
        """Bring a freshly built index up to the writes made while it was built (under the lock).

        Returns the ids left in it as tombstones (indexes that cannot remove)."""
        touched = np.fromiter(self._journal or (), np.int64)
        tombstones: set[int] = set()
        if not len(touched):
            return tombstones
        pos = np.searchsorted(in_new, touched)
        was_added = (pos < len(in_new)) & (in_new[np.minimum(pos, len(in_new) - 1)] == touched) \
            if len(in_new) else np.zeros(len(touched), bool)
        rows = self._table.rows(touched)
        present = rows != ABSENT
        gone = touched[was_added & ~present]
        if len(gone):
            if factory.removable(index):
                index.remove_ids(gone)
            else:
                tombstones.update(gone.tolist())
        missing = ~was_added & present
        if missing.any():
            index.add_with_ids(self._table.vectors_at(rows[missing]), touched[missing])
        return tombstones

"""All galleries' indexes in this process, rebuilt from the store and kept in step with its change log."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.store.models import Change, Gallery
from app.store.repository import Repository

log = logging.getLogger("marginface.search")

# A change id not seen after this long belongs to a rolled-back transaction (PostgreSQL sequences
# leave such gaps); waiting for it any longer would stall replication.
GAP_TIMEOUT_S = 30.0


class IndexRegistry:
    """Gallery id → GalleryIndex. Own writes are applied at once; other processes' via ``sync_once``."""

    def __init__(self, repo: Repository, params: IndexParams, rebuild_ratio: float = 0.2) -> None:
        self.repo = repo
        self.params = params
        self.rebuild_ratio = rebuild_ratio
        self._indexes: dict[int, GalleryIndex] = {}
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._watermark = 0  # every change id <= watermark has been applied
        self._seen: set[int] = set()  # applied ids above the watermark
        self._gap_since: float | None = None

    def load_all(self) -> None:
        """Rebuild every gallery's index from the store (start-up)."""
        self._watermark = self.repo.last_change_id()  # read first: later changes are replayed idempotently
        for gallery in self.repo.list_galleries():
            self._load(gallery)

    def _load(self, gallery: Gallery) -> GalleryIndex:
        params = IndexParams(
            kind=gallery.index_kind,
            nprobe=self.params.nprobe,
            hnsw_m=self.params.hnsw_m,
            hnsw_ef_search=self.params.hnsw_ef_search,
            use_gpu=self.params.use_gpu,
        )
        index = GalleryIndex(gallery.embedding_size, params, self.rebuild_ratio)
        for ids, subjects, vectors in self.repo.iter_embeddings(gallery.id):
            index.add(ids, subjects, vectors)
        with self._lock:
            self._indexes[gallery.id] = index
        log.info("gallery %s: %d faces indexed (%s)", gallery.name, index.size, index.describe())
        return index

    def get(self, gallery: Gallery) -> GalleryIndex:
        """The gallery's index, built from the store on first use (e.g. created by another process)."""
        with self._lock:
            index = self._indexes.get(gallery.id)
            if index is None:
                index = self._load(gallery)
            return index

    def drop(self, gallery_id: int) -> None:
        with self._lock:
            self._indexes.pop(gallery_id, None)

    def loaded(self) -> dict[int, GalleryIndex]:
        with self._lock:
            return dict(self._indexes)

    # replication
    def sync_once(self) -> int:
        """Apply changes committed (by any process) since the last call; returns how many were new."""
        with self._sync_lock:
            changes = [c for c in self.repo.changes_after(self._watermark) if c.id not in self._seen]
            if changes:
                self._apply(changes)
                self._seen.update(c.id for c in changes)
            self._advance_watermark()
            return len(changes)

    def _apply(self, changes: list[Change]) -> None:
        adds: dict[int, list[int]] = {}
        for change in changes:
            if change.kind == "face_add" and change.face_id is not None:
                adds.setdefault(change.gallery_id, []).append(int(change.face_id))
        indexes = self.loaded()
        # Adds first (rows deleted meanwhile are no longer in the store and are skipped), then removals.
        for gallery_id, face_ids in adds.items():
            index = indexes.get(gallery_id)
            if index is None:
                continue  # not loaded yet: it is built from the store on first use
            missing = [f for f in face_ids if not index.contains(f)]
            for ids, subjects, vectors in self.repo.iter_embeddings(gallery_id, face_ids=missing):
                index.add(ids, subjects, vectors)
        for change in changes:
            index = indexes.get(change.gallery_id)
            if change.kind == "gallery_delete":
                self.drop(change.gallery_id)
            elif index is None:
                continue
            elif change.kind == "face_delete" and change.face_id is not None:
                index.remove([int(change.face_id)])
            elif change.kind == "subject_delete" and change.subject_id is not None:
                index.remove_subject(int(change.subject_id))

    def _advance_watermark(self) -> None:
        while self._watermark + 1 in self._seen:
            self._watermark += 1
            self._seen.discard(self._watermark)
        if not self._seen:
            self._gap_since = None
            return
        now = time.monotonic()
        if self._gap_since is None:
            self._gap_since = now
        elif now - self._gap_since > GAP_TIMEOUT_S:
            self._watermark = min(self._seen)
            self._seen.discard(self._watermark)
            self._gap_since = None
            self._advance_watermark()

    def out_of_step(self) -> list[str]:
        """Galleries whose index does not hold exactly the store's faces (for /readyz)."""
        problems = []
        for gallery in self.repo.list_galleries():
            index = self.loaded().get(gallery.id)
            if index is None:
                continue
            _, stored = self.repo.gallery_counts(gallery.id)
            if stored != index.size:
                problems.append(f"{gallery.name}: {index.size} indexed, {stored} stored")
        return problems

    def add_local(self, gallery: Gallery, face_ids: list[int], subject_id: int, vectors: np.ndarray) -> None:
        """Index faces this process has just committed."""
        subjects = np.full(len(face_ids), subject_id, dtype=np.int64)
        self.get(gallery).add(np.asarray(face_ids, dtype=np.int64), subjects, vectors)

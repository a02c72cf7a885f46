"""All galleries' indexes in this process, rebuilt from the store and kept in step with its change log.

One order of truth per gallery:
- every write of this process to a gallery runs under that gallery's write lock (``writing``): the store
  commit, then the index update, with nothing of the same gallery in between;
- changes of other processes are replayed from the change log in id order under the same lock. A replayed
  ``face_add`` reads the face from the store *now* (a face deleted since is skipped), deletes are removals:
  replaying a change twice, or late, leaves the same index, so the order of application cannot lose a face;
- the change-log position (``position``) is "every change id <= P is reflected in every loaded index".
  On PostgreSQL a transaction can commit after one with a higher id; such gaps are re-read for
  ``GAP_TIMEOUT_S`` (after that the id belonged to a rolled-back transaction). Ids are never reused
  (migration 0002), so a face id always means one face;
- a process whose position is below what was pruned from the log reloads its indexes from the store.

Loads and reloads build a new index outside the registry lock and swap it in: searches keep using the old
one meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.store.models import Change, Gallery
from app.store.repository import Repository

log = logging.getLogger("marginface.search")

# A change id not seen after this long belongs to a rolled-back transaction (PostgreSQL sequences
# leave such gaps); waiting for it any longer would stall replication.
GAP_TIMEOUT_S = 30.0
# At start, ids missing among the newest GAP_WINDOW changes may still be committing: watch them too.
GAP_WINDOW = 1000
BATCH = 5000


class Snapshots(Protocol):
    """Persisted indexes (app.search, issue 16): an index and the change-log position it reflects."""

    def load(self, gallery: Gallery, params: IndexParams) -> tuple[Any, int] | None: ...

    def save(self, gallery: Gallery, index: Any, position: int) -> None: ...


def default_index(gallery: Gallery, params: IndexParams, rebuild_ratio: float) -> GalleryIndex:
    return GalleryIndex(gallery.embedding_size, params, rebuild_ratio)


def _tag(index: Any, pack: tuple[str, str] | None) -> None:
    """Record on the index which pack's embeddings it holds (recognition checks it, issue 13)."""
    try:
        index.pack = pack
    except AttributeError:  # an index type that takes no attributes: left untagged
        pass


class IndexRegistry:
    """Gallery id → index. Own writes go through ``writing``; other processes' through ``sync_once``."""

    def __init__(self, repo: Repository, params: IndexParams, rebuild_ratio: float = 0.2) -> None:
        self.repo = repo
        self.params = params
        self.rebuild_ratio = rebuild_ratio
        # Hooks (issue 16): how an empty index is made, and where persisted indexes come from.
        self.index_factory: Callable[[Gallery, IndexParams, float], Any] = default_index
        self.snapshots: Snapshots | None = None
        self._indexes: dict[int, Any] = {}
        self._lock = threading.Lock()  # guards the dicts only: never held across store access or builds
        self._gallery_locks: dict[int, threading.RLock] = {}
        self._sync_lock = threading.Lock()
        self._high = 0  # highest change id applied
        self._gaps: dict[int, float] = {}  # ids below _high not seen yet → since when (monotonic)
        self.reloads = 0  # full reloads after the log was pruned past our position (tests watch this)
        self._suspects: dict[str, str] = {}  # galleries out of step at the last heal() → how

    # positions
    @property
    def position(self) -> int:
        """Every change id <= this is reflected in every loaded index (the rest replays idempotently)."""
        return min(self._gaps, default=self._high + 1) - 1

    def _start_position(self) -> None:
        """Take the store's position now; indexes read from the store afterwards include all before it."""
        high = self.repo.last_change_id()
        low = max(high - GAP_WINDOW, self.repo.pruned_through())
        present = self.repo.change_ids_between(low, high) if high > low else set()
        now = time.monotonic()
        self._high = high
        self._gaps = {i: now for i in range(low + 1, high + 1) if i not in present}

    # locks
    def gallery_lock(self, gallery_id: int) -> threading.RLock:
        with self._lock:
            lock = self._gallery_locks.get(gallery_id)
            if lock is None:
                lock = self._gallery_locks[gallery_id] = threading.RLock()
            return lock

    @contextmanager
    def writing(self, gallery: Gallery) -> Iterator[Any]:
        """Hold the gallery's write lock and yield its index: commit to the store, then update the index.

        Blocking (store access): call it in a worker thread, never on the event loop.
        """
        with self.gallery_lock(gallery.id):
            yield self._get_locked(gallery)

    # loading
    def load_all(self) -> None:
        """Rebuild every gallery's index from the store (start-up, or after the log was pruned past us)."""
        with self._sync_lock:
            self._reload_all(full=False)  # start-up: snapshots + log tail where usable (issue 16)

    def _reload_all(self, full: bool = True) -> None:
        self._start_position()  # first: later changes are replayed idempotently
        galleries = self.repo.list_galleries()
        alive = {g.id for g in galleries}
        for gallery in galleries:
            with self.gallery_lock(gallery.id):
                self._install(gallery.id, self._build(gallery, full=full))
        with self._lock:
            for gallery_id in [g for g in self._indexes if g not in alive]:
                del self._indexes[gallery_id]

    def _params(self, gallery: Gallery) -> IndexParams:
        from dataclasses import replace

        return replace(self.params, kind=gallery.index_kind)

    def _build(self, gallery: Gallery, *, full: bool = False) -> Any:
        """A new index of the gallery, tagged ``pack`` = (name, version) of the embeddings it holds.

        Built from the store's gallery row as it is now, not the caller's copy: a migration (issue 13)
        may have moved the gallery to another pack (and size) since the caller read it. The pack is read
        before and after the faces; a switch in between (one transaction) means a rebuild.
        """
        for _ in range(3):
            fresh = self._fresh(gallery)
            index = self._build_from(fresh, full=full)
            now = self._fresh(gallery)
            if (now.pack_name, now.pack_version) == (fresh.pack_name, fresh.pack_version):
                _tag(index, (fresh.pack_name, fresh.pack_version))
                return index
        _tag(index, None)  # migrated three times while building: unknown, searched as is
        return index

    def _fresh(self, gallery: Gallery) -> Gallery:
        with self.repo.session() as s:
            return s.get(Gallery, gallery.id) or gallery

    def _build_from(self, gallery: Gallery, *, full: bool = False) -> Any:
        """A snapshot plus the log's tail, or the store's faces."""
        params = self._params(gallery)
        if not full and self.snapshots is not None:
            restored = self._from_snapshot(gallery, params)
            if restored is not None:
                return restored
        index = self.index_factory(gallery, params, self.rebuild_ratio)
        reserve = getattr(index, "reserve", None)
        if reserve is not None:  # sized once (10M × 128: no 2× peak while the table doubles)
            reserve(self.repo.gallery_counts(gallery.id)[1])
        bulk = getattr(index, "bulk", None)
        with bulk() if bulk is not None else _nothing(index):
            for ids, subjects, vectors in self.repo.iter_embeddings(gallery.id):
                index.add(ids, subjects, vectors)
        log.info("gallery %s: %d faces indexed (%s)", gallery.name, index.size, index.describe())
        return index

    def _from_snapshot(self, gallery: Gallery, params: IndexParams) -> Any | None:
        assert self.snapshots is not None
        try:
            loaded = self.snapshots.load(gallery, params)
        except Exception as exc:  # noqa: BLE001 - a bad snapshot only costs a rebuild
            log.warning("gallery %s: snapshot not usable (%s); rebuilding from the store", gallery.name, exc)
            return None
        if loaded is None:
            return None
        index, position = loaded
        if position > self.repo.last_change_id() or self.repo.pruned_through() > position:
            log.info("gallery %s: snapshot at %d is stale; rebuilding from the store", gallery.name, position)
            return None
        replayed = self.replay_tail(gallery.id, index, position)
        if replayed < 0:
            log.info("gallery %s: deleted or migrated since its snapshot: rebuilt", gallery.name)
            return None
        log.info("gallery %s: snapshot at %d + %d changes replayed", gallery.name, position, replayed)
        return index

    def replay_tail(self, gallery_id: int, index: Any, position: int) -> int:
        """Apply to ``index`` every change of the gallery with id > ``position`` (idempotent); how many.

        -1 when the tail ends the index's life (gallery deleted or migrated): rebuild from the store.
        """
        after, count = position, 0
        while True:
            changes = self.repo.changes_since(after, gallery_id=gallery_id, limit=BATCH)
            if not changes:
                return count
            if self._apply_to(index, gallery_id, changes):
                return -1
            count += len(changes)
            after = int(changes[-1].id)

    def _install(self, gallery_id: int, index: Any) -> None:
        with self._lock:
            self._indexes[gallery_id] = index

    def _get_locked(self, gallery: Gallery) -> Any:
        """The gallery's index; the caller holds the gallery lock (so no replay can slip past a load)."""
        with self._lock:
            index = self._indexes.get(gallery.id)
        if index is None:
            index = self._build(gallery)
            self._install(gallery.id, index)
        return index

    def get(self, gallery: Gallery) -> Any:
        """The gallery's index, built from the store on first use (e.g. created by another process).

        Blocking on first use (store access): call it in a worker thread from async code.
        """
        with self._lock:
            index = self._indexes.get(gallery.id)
        if index is not None:
            return index
        with self.gallery_lock(gallery.id):
            return self._get_locked(gallery)

    def peek(self, gallery_id: int) -> Any | None:
        """The gallery's index if it is loaded (never builds)."""
        with self._lock:
            return self._indexes.get(gallery_id)

    def drop(self, gallery_id: int) -> None:
        with self._lock:
            self._indexes.pop(gallery_id, None)

    def loaded(self) -> dict[int, Any]:
        with self._lock:
            return dict(self._indexes)

    # replication
    def sync_once(self) -> int:
        """Apply changes committed (by any process) since the last call; returns how many were new."""
        with self._sync_lock:
            if self.repo.pruned_through() > self.position:
                log.warning(
                    "the change log was pruned past this process's position %d: reloading every index",
                    self.position,
                )
                self.reloads += 1
                self._reload_all()
                return 0
            gaps = sorted(self._gaps)
            changes = self.repo.changes_since(self._high, also=gaps, limit=BATCH)
            self._apply(changes)
            self._advance(changes)
            return len(changes)

    def _advance(self, changes: Sequence[Change]) -> None:
        now = time.monotonic()
        for change in changes:
            cid = int(change.id)
            if cid in self._gaps:
                del self._gaps[cid]
            elif cid > self._high:
                for missing in range(self._high + 1, cid):
                    self._gaps[missing] = now
                self._high = cid
        for cid, since in list(self._gaps.items()):
            if now - since > GAP_TIMEOUT_S:
                del self._gaps[cid]

    def _apply(self, changes: Sequence[Change]) -> None:
        """Apply changes in id order, each gallery's run under that gallery's lock."""
        run: list[Change] = []
        for change in changes:
            if run and run[-1].gallery_id != change.gallery_id:
                self._apply_run(run)
                run = []
            run.append(change)
        if run:
            self._apply_run(run)

    def _apply_run(self, run: list[Change]) -> None:
        gallery_id = int(run[0].gallery_id)
        with self.gallery_lock(gallery_id):
            with self._lock:
                index = self._indexes.get(gallery_id)
            if index is None:
                return  # not loaded: built from the store on first use, which includes these changes
            if self._apply_to(index, gallery_id, run):
                self.drop(gallery_id)

    def _apply_to(self, index: Any, gallery_id: int, changes: Sequence[Change]) -> bool:
        """Apply one gallery's changes to ``index`` in order; True when the gallery was deleted."""
        pending: list[int] = []  # a run of face_add ids, fetched from the store together

        def flush() -> None:
            missing = [f for f in pending if not index.contains(f)]
            pending.clear()
            if missing:  # rows deleted since are no longer in the store and are skipped
                for ids, subjects, vectors in self.repo.iter_embeddings(gallery_id, face_ids=missing):
                    index.add(ids, subjects, vectors)

        for change in changes:
            if change.kind == "face_add" and change.face_id is not None:
                pending.append(int(change.face_id))
                continue
            flush()
            if change.kind == "face_delete" and change.face_id is not None:
                index.remove([int(change.face_id)])
            elif change.kind == "subject_delete" and change.subject_id is not None:
                index.remove_subject(int(change.subject_id))
            elif change.kind in ("gallery_delete", "gallery_migrated"):  # migrated: rebuild (issue 13)
                return True
        flush()
        return False

    # persistence hooks (issue 16)
    @contextmanager
    def checkpoint(self, gallery_id: int) -> Iterator[tuple[Any, int] | None]:
        """Hold the gallery lock and yield (index, position) to persist, or None when not loaded.

        Position read under the lock: every change <= it is in the index (later ones may be too).
        """
        with self.gallery_lock(gallery_id):
            position = self.position
            with self._lock:
                index = self._indexes.get(gallery_id)
            yield None if index is None else (index, position)

    def save_snapshots(self) -> int:
        """Persist every loaded index through ``snapshots``; how many were saved."""
        if self.snapshots is None:
            return 0
        names = {g.id: g for g in self.repo.list_galleries()}
        saved = 0
        for gallery_id in list(self.loaded()):
            gallery = names.get(gallery_id)
            if gallery is None:
                continue
            with self.checkpoint(gallery_id) as found:
                if found is not None:
                    self.snapshots.save(gallery, found[0], found[1])
                    saved += 1
        return saved

    # health
    def out_of_step(self) -> list[str]:
        """Galleries whose index does not hold exactly the store's faces (for /readyz)."""
        problems = []
        for gallery in self.repo.list_galleries():
            with self.gallery_lock(gallery.id):  # not between a write's commit and its index update
                index = self.loaded().get(gallery.id)
                if index is None:
                    continue
                _, stored = self.repo.gallery_counts(gallery.id)
            if stored != index.size:
                problems.append(f"{gallery.name}: {index.size} indexed, {stored} stored")
        return problems

    def heal(self) -> list[str]:
        """Rebuild from the store every gallery found out of step at this call and the previous one.

        A safety net, not the mechanism: ordered replay keeps indexes exact; this bounds the damage of
        anything unforeseen (e.g. a transaction that committed after its change-log gap timed out).
        """
        suspects = {p.split(":", 1)[0]: p for p in self.out_of_step()}
        healed = []
        for gallery in self.repo.list_galleries():
            # the very same counts twice: not a write in flight (those move the counts between checks)
            if gallery.name in suspects and self._suspects.get(gallery.name) == suspects[gallery.name]:
                with self.gallery_lock(gallery.id):
                    self._install(gallery.id, self._build(gallery, full=True))
                log.warning("gallery %s: index out of step with the store; rebuilt from it", gallery.name)
                healed.append(gallery.name)
        self._suspects = {name: p for name, p in suspects.items() if name not in healed}
        return healed

    def add_local(self, gallery: Gallery, face_ids: list[int], subject_id: int, vectors: np.ndarray) -> None:
        """Index faces this process has just committed.

        Prefer committing and indexing inside one ``writing(gallery)`` block: a delete that lands between
        the commit and this call would otherwise be undone in this process's index until the next reload.
        """
        subjects = np.full(len(face_ids), subject_id, dtype=np.int64)
        with self.writing(gallery) as index:
            index.add(np.asarray(face_ids, dtype=np.int64), subjects, vectors)


@contextmanager
def _nothing(index: Any) -> Iterator[Any]:
    yield index

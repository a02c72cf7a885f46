"""Wiring the search settings into the index registry: index parameters, backend, snapshots.

``configure_search(registry, settings)`` is called once where the registry is made (AppContext). It sets
the registry's ``params`` from the settings, its ``index_factory`` (FAISS ``GalleryIndex`` or
``MilvusGalleryIndex``) and, for FAISS, its ``snapshots`` (``SnapshotStore``). ``SnapshotSaver`` saves the
loaded indexes every ``search_snapshot_interval_s`` when the change-log position moved, and on close.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.search.snapshots import SnapshotStore
from app.settings import Settings
from app.store.models import Gallery

log = logging.getLogger("marginface.search")


def params_from_settings(settings: Settings) -> IndexParams:
    return IndexParams(
        kind=settings.default_index,
        nprobe=settings.ivf_nprobe,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_search=settings.hnsw_ef_search,
        use_gpu=settings.use_gpu_index,
        memory_budget_mb=settings.search_memory_budget_mb,
        exact_max_faces=settings.search_exact_max_faces,
        rerank=settings.search_rerank,
        target_recall=settings.search_target_recall,
        vectors_dir=str(Path(settings.home).expanduser() / "vectors"),  # float tables over the budget
    )


def milvus_uri(settings: Settings) -> str:
    return settings.milvus_uri or str(Path(settings.home).expanduser() / "milvus.db")


def index_factory(settings: Settings):
    """(gallery, params, rebuild_ratio) → an empty index of the configured backend."""
    if settings.search_backend == "milvus":
        from app.search.milvus_index import MilvusGalleryIndex, client_for, collection_name

        uri, token, prefix = milvus_uri(settings), settings.milvus_token, settings.milvus_collection_prefix

        def make_milvus(gallery: Gallery, params: IndexParams, rebuild_ratio: float) -> Any:
            name = collection_name(prefix, gallery.id)
            return MilvusGalleryIndex(gallery.embedding_size, params, client_for(uri, token), name)

        return make_milvus

    def make_faiss(gallery: Gallery, params: IndexParams, rebuild_ratio: float) -> Any:
        return GalleryIndex(gallery.embedding_size, params, rebuild_ratio)

    return make_faiss


def configure_search(registry: Any, settings: Settings) -> SnapshotSaver | None:
    """Point ``registry`` at the configured backend and snapshot store; returns the saver (or None)."""
    registry.params = params_from_settings(settings)
    registry.index_factory = index_factory(settings)
    if settings.search_backend != "faiss" or not settings.search_snapshots:
        return None
    root = settings.search_snapshot_dir or Path(settings.home).expanduser() / "indexes"
    registry.snapshots = SnapshotStore(root, settings.tombstone_rebuild_ratio)
    return SnapshotSaver(registry, settings.search_snapshot_interval_s)


class SnapshotSaver:
    """Saves the registry's indexes in a background thread every ``interval_s`` when the log moved."""

    def __init__(self, registry: Any, interval_s: float) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_at: int | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="marginface-snapshots")
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.save_now()

    def save_now(self) -> int:
        """Save when the position moved since the last save; how many indexes were saved."""
        position = self.registry.position
        if position == self._saved_at:
            return 0
        try:
            saved = self.registry.save_snapshots()
        except Exception:  # noqa: BLE001 - a failed save only costs a slower start
            log.exception("saving index snapshots failed")
            return 0
        self._saved_at = position
        return saved

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.save_now()

"""The service container: settings, store, indexes, model packs and services, opened once per process."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from app.metrics import Metrics
from app.search.backends import configure_search
from app.search.factory import IndexParams
from app.search.registry import IndexRegistry
from app.services.backoff import LoopHealth
from app.services.engines import Engines
from app.services.enrollment import EnrollmentService
from app.services.galleries import GalleryService
from app.services.recognition import RecognitionService
from app.settings import Settings
from app.store.db import make_engine
from app.store.keys import KeyStore
from app.store.migrate import upgrade
from app.store.repository import Repository
from models.errors import MarginFaceError

log = logging.getLogger("marginface.server")

CHANGE_LOG_RETENTION = timedelta(hours=24)
PRUNE_EVERY_S = 3600.0
HEAL_EVERY_S = 30.0  # an index out of step at two checks in a row is rebuilt from the store
SYNC_BACKOFF_MAX_S = 2.0  # recovery within this once the store is back


class NoKeysError(MarginFaceError):
    code = "no_api_keys"


class AppContext:
    """Everything a request handler or the CLI needs; ``open`` migrates, loads packs and rebuilds indexes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = make_engine(
            settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous
        )
        self.repo = Repository(self.db)
        self.keys = KeyStore(self.repo)
        params = IndexParams(
            kind=settings.default_index,
            nprobe=settings.ivf_nprobe,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_search=settings.hnsw_ef_search,
            use_gpu=settings.use_gpu_index,
        )
        self.indexes = IndexRegistry(self.repo, params, settings.tombstone_rebuild_ratio)
        self.search_saver = configure_search(self.indexes, settings)  # issue 16: backend, snapshots
        self.engines = Engines(settings, self.metrics)
        self.galleries = GalleryService(self.repo, self.indexes, self.engines, settings.default_index)
        self.enrollment = EnrollmentService(self.galleries, settings)
        self.recognition = RecognitionService(self.engines, self.galleries, settings)
        self.inflight = 0
        self._sync_task: asyncio.Task | None = None
        self.metrics.watch_galleries(self._gallery_sizes)

    def migrate(self) -> None:
        upgrade(self.db)

    def open(self, *, load_packs: bool = True) -> None:
        """Migrate the store, check keys, load the packs and rebuild every index from the store."""
        self.migrate()
        if self.settings.auth and self.keys.active_count() == 0:
            raise NoKeysError(
                "no API key exists: create one with `marginface keys create --admin`, "
                "or start with --no-auth for a local trial"
            )
        if load_packs:
            self.engines.load()
        self.indexes.load_all()
        if self.search_saver is not None:
            self.search_saver.start()  # issue 16: periodic index snapshots

    def _gallery_sizes(self):
        names = {g.id: g.name for g in self.repo.list_galleries()}
        for gallery_id, index in self.indexes.loaded().items():
            if gallery_id in names:
                yield names[gallery_id], index.size, index.subjects

    def start_sync(self) -> None:
        """Poll the change log so writes of other processes reach this one's indexes."""
        if self._sync_task is None:
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_loop(), name="change-log-sync"
            )

    async def _sync_loop(self) -> None:
        """Replay the change log every ``sync_interval_s``; during a store outage, back off and log once."""
        health = LoopHealth(log, "change-log sync", self.settings.sync_interval_s, SYNC_BACKOFF_MAX_S)
        delay, last_prune, last_heal = health.interval, time.monotonic(), time.monotonic()
        while True:
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self.indexes.sync_once)
                if time.monotonic() - last_heal > HEAL_EVERY_S:
                    last_heal = time.monotonic()
                    await asyncio.to_thread(self.indexes.heal)
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    await asyncio.to_thread(self.repo.prune_changes, CHANGE_LOG_RETENTION)
            except Exception as exc:  # noqa: BLE001 - a store outage must not kill the loop
                delay = health.failed(exc)
                continue
            delay = health.ok()

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            try:
                await self._sync_task
            except asyncio.CancelledError:
                pass
            self._sync_task = None
        await self.engines.stop()
        if self.search_saver is not None:
            await asyncio.to_thread(self.search_saver.close)  # issue 16: save indexes for a fast start
        self.db.dispose()

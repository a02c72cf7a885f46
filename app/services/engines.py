"""Loaded model packs: one pipeline each, its micro-batcher, and the threads that detect and align."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.batching import MicroBatcher
from app.metrics import Metrics
from app.services.errors import Conflict, Unavailable
from app.settings import Settings
from models.analysis_pool import AnalysisPool, WorkerLost, pool_context
from models.analysis_worker import Embed
from models.detectors.policy import DetectionPolicy, analyse_photo
from models.face import Face
from models.images import MemoryBudget, decode_cost_of
from models.shared_budget import SharedBudget
from models.topology import apply_topology

log = logging.getLogger("marginface.server")


@dataclass
class Analysis:
    """The faces found in one image (highest score first) and their aligned crops."""

    faces: list[Face]
    crops: np.ndarray
    image_size: tuple[int, int]  # (width, height)
    embeddings: np.ndarray | None = None  # every crop's, when the analysis process embedded them
    qualities: list | None = None  # models.quality.assess of every face, computed there too


def decode_budget(settings: Settings) -> MemoryBudget:
    """Bytes concurrent decodes may hold: ``max_decode_bytes``, by default one image of the pixel limit."""
    return MemoryBudget(settings.max_decode_bytes or decode_cost_of(settings.max_image_pixels))


class Engine:
    """One pack's pipeline, shared by every request: decode/detect/align in threads, embed in batches."""

    def __init__(
        self,
        pipeline,
        settings: Settings,
        metrics: Metrics,
        executor: ThreadPoolExecutor,
        budget: MemoryBudget | None = None,
        pool: AnalysisPool | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.pool = pool  # issue 17: decode/detect/align in worker processes (None: in executor threads)
        self.embedded_in_workers = 0
        self.decode_budget = budget or decode_budget(settings)
        self.settings = settings
        self.name: str = pipeline.pack_name
        self.version: str = pipeline.manifest.version
        self.threshold: float = float(pipeline.threshold)
        self.embedding_size: int = int(pipeline.embedding_size)
        self._executor = executor
        self.detection_policy = DetectionPolicy.from_env()
        self.batcher = MicroBatcher(
            pipeline.embed_crops,
            max_items=settings.batch_max_faces,
            max_wait_ms=settings.batch_wait_ms,
            on_batch=metrics.batch_observer(self.name),
            workers=getattr(executor, "_max_workers", 1),  # issue 17: one embedding worker per pipeline
        )

    def _analyse_sync(self, data: bytes, max_faces: int) -> Analysis:
        limits = {"max_bytes": self.settings.max_image_bytes, "max_pixels": self.settings.max_image_pixels}
        # issue 17: reduced JPEG decode and a canvas per photo; the decode budget is held until aligned
        policy, budget = self.detection_policy, self.decode_budget
        faces, crops, full = analyse_photo(self.pipeline, data, policy, max_faces=max_faces, budget=budget,
                                           **limits)
        return Analysis(faces, crops, full)

    async def analyse(self, data: bytes, max_faces: int | None = None, *, embed: Embed = False) -> Analysis:
        """Decode (limits checked before decoding), detect and align, off the event loop; ``embed``: embed
        every face in the analysis process too, when there is one (``Analysis.embeddings``; ``"largest"``:
        only the largest face's, 1×D, as enrollment keeps it). Without analysis processes: None."""
        limit = min(max_faces or self.settings.max_faces, self.settings.max_faces)
        if self.pool is not None:
            limits = {"max_bytes": self.settings.max_image_bytes,
                      "max_pixels": self.settings.max_image_pixels}
            try:
                faces, crops, full, embeddings, qualities = await self.pool.analyse(
                    data, limit, embed=embed, **limits
                )
            except WorkerLost:
                raise Unavailable(
                    "the worker analysing this photo stopped (a new one is starting); retry",
                    code="analysis_worker_lost",
                ) from None
            if embeddings is not None:
                self.embedded_in_workers += len(embeddings)
            return Analysis(faces, crops, full, embeddings, qualities)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._analyse_sync, data, limit)

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        """N×D embeddings of aligned crops, batched with other requests' crops."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        return await self.batcher.submit(crops)

    def info(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "embedding_size": self.embedding_size,
            "threshold": self.threshold,
            "providers": self.pipeline.providers,
        }


def server_topology(settings: Settings):
    """The thread topology for the server's packs: ``detect_threads`` when set explicitly, else chosen
    from the cores and the first pack's model size (models/topology.py; env MARGINFACE_ONNX_THREADS,
    MARGINFACE_PIPELINES)."""
    from models.topology import choose_topology, topology_for_pack

    explicit = settings.detect_threads if "detect_threads" in settings.model_fields_set else None
    try:
        return topology_for_pack(settings.packs[0], settings.providers, pipelines=explicit)
    except Exception:  # noqa: BLE001 - the pack's own load reports why it is missing
        return choose_topology(0, pipelines=explicit)


def analysis_processes(settings: Settings, topology, providers: list[str]) -> int:
    """Worker processes for decode/detect/align: the setting, else one per pipeline on CPU when there are
    several (a GPU session per process would each take device memory; one pipeline gains nothing)."""
    if settings.analysis_processes is not None:
        return settings.analysis_processes
    on_cpu = all(p == "CPUExecutionProvider" for p in providers)
    return topology.pipelines if on_cpu and topology.pipelines > 1 else 0


class Engines:
    """The packs named in settings, loaded at start-up; a pack that fails to load is reported, not fatal."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topology = server_topology(settings)  # issue 17: threads per session, pipelines side by side
        apply_topology(self.topology)
        self.executor = ThreadPoolExecutor(max_workers=self.topology.pipelines, thread_name_prefix="detect")
        self.decode_budget = decode_budget(settings)  # shared by every pack's engine
        self._shared_budget: SharedBudget | None = None  # the same bound across analysis processes
        self.pools: list[AnalysisPool] = []
        self._by_name: dict[str, Engine] = {}
        self.errors: dict[str, str] = {}
        self.default_name: str | None = None

    def load(self) -> None:
        from models.pipeline import FacePipeline

        for requested in self.settings.packs:
            try:
                pipeline = FacePipeline.from_pack(
                    requested, providers=self.settings.providers, threads=self.topology.threads
                )
            except Exception as exc:  # noqa: BLE001 - any load failure makes the pack unavailable
                log.error("model pack %r not loaded: %s", requested, exc)
                self.errors[requested] = str(exc)
                continue
            pool = self._start_pool(requested, pipeline)
            engine = Engine(pipeline, self.settings, self.metrics, self.executor, self.decode_budget, pool)
            self._by_name[requested] = engine
            self._by_name[engine.name] = engine
            if self.default_name is None:
                self.default_name = engine.name
            log.info("model pack %s %s loaded (%s)", engine.name, engine.version, engine.pipeline.providers)

    def _start_pool(self, requested: str, pipeline) -> AnalysisPool | None:
        used = [p for names in pipeline.providers.values() for p in names]
        processes = analysis_processes(self.settings, self.topology, used)
        if processes <= 0:
            return None
        if self._shared_budget is None:  # one bound across every pack's workers
            slots = processes * len(self.settings.packs)
            self._shared_budget = SharedBudget(self.decode_budget.capacity, slots, pool_context())
        first_slot = sum(p.processes for p in self.pools)
        pool = AnalysisPool(requested, self.settings.providers, processes, DetectionPolicy.from_env(),
                            self._shared_budget, first_slot)
        pids = pool.start()
        self.pools.append(pool)
        log.info("model pack %s: %d analysis processes (%s)", requested, processes, pids)
        return pool

    def add(self, pipeline, alias: str | None = None) -> Engine:
        """Register an already built pipeline (used by the bench and the CLI)."""
        engine = Engine(pipeline, self.settings, self.metrics, self.executor, self.decode_budget)
        self._by_name[engine.name] = engine
        if alias:
            self._by_name[alias] = engine
        self.default_name = self.default_name or engine.name
        return engine

    @property
    def ready(self) -> bool:
        return self.default_name is not None and not self.errors

    def loaded(self) -> list[Engine]:
        return list({id(e): e for e in self._by_name.values()}.values())

    def get(self, name: str | None = None, version: str | None = None) -> Engine:
        """The engine of pack ``name`` (default pack when None); 503 when not loaded, 409 on version drift."""
        key = name or self.default_name
        engine = self._by_name.get(key) if key else None
        if engine is None:
            raise Unavailable(
                f"model pack {key!r} is not loaded here (loaded: {sorted(self._by_name) or 'none'})",
                code="pack_not_loaded",
            )
        if version is not None and version != engine.version:
            raise Conflict(
                f"the gallery was built with pack {engine.name} {version}, but {engine.version} is loaded; "
                "embeddings of different pack versions cannot be compared: re-enroll or load that version",
                code="pack_version_mismatch",
            )
        return engine

    async def stop(self) -> None:
        for engine in self.loaded():
            await engine.batcher.stop()
        for pool in self.pools:
            pool.shutdown()
        if self._shared_budget is not None:
            self._shared_budget.remove()
        self.executor.shutdown(wait=False, cancel_futures=True)

"""Server settings, read from ``MARGINFACE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """``$MARGINFACE_HOME`` or ``~/.marginface``: where packs and the SQLite store live."""
    return Path(os.environ.get("MARGINFACE_HOME") or Path.home() / ".marginface")


class Settings(BaseSettings):
    """Every knob of the service; each field ``foo`` is set by ``MARGINFACE_FOO``."""

    model_config = SettingsConfigDict(env_prefix="MARGINFACE_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file $MARGINFACE_HOME/marginface.db"
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL survives power loss; NORMAL (with WAL) survives only process crashes",
    )
    packs: list[str] = Field(default=["default"], description="model packs to load; the first is the default")
    providers: list[str] | None = Field(default=None, description="ONNX Runtime providers; None = auto")

    auth: bool = Field(default=True, description="require API keys (serve --no-auth sets this to false)")
    access_log: bool = Field(
        default=False,
        description="a log line per request (serve --access-log); /metrics counts every request by route, "
        "status and latency either way, and errors are logged either way",
    )

    # limits
    max_request_bytes: int = 20 * 1024 * 1024
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_faces: int = Field(default=20, ge=1, description="faces detected per image at most")
    max_images_per_enroll: int = Field(default=16, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    min_enroll_face_px: int = Field(default=32, ge=1, description="shorter box side below this: too_small")
    max_concurrent_requests: int = Field(
        default=64, ge=1, description="image requests in flight; beyond: 503 with Retry-After"
    )
    detect_threads: int = Field(default=2, ge=1, description="threads running decode + detection + alignment")
    analysis_processes: int | None = Field(
        default=None,
        ge=0,
        description="worker processes for decode + detection + alignment (issue 17); None: one per pipeline "
        "of the thread topology when the packs run on CPU and there are several, 0: threads of this process",
    )
    # memory bounds against hostile uploads (bench/bench_hostile.py measures them)
    max_decode_bytes: int | None = Field(
        default=None, ge=1, description="bytes concurrent decodes hold together; None: one max-size image"
    )
    max_inflight_bytes: int = Field(
        default=48 * 1024 * 1024, ge=1, description="request bytes admitted at once (JSON ×3); beyond: 503"
    )
    public_metrics: bool = Field(default=False, description="serve /metrics without an API key")
    metrics_gallery_names: bool = Field(default=False, description="label gallery sizes by name in /metrics")

    # micro-batching of embeddings
    batch_max_faces: int = Field(default=32, ge=1)
    batch_wait_ms: float = Field(default=5.0, ge=0.0)

    # search
    default_index: Literal["flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw", "auto"] = "flat"
    ivf_nprobe: int = Field(default=16, ge=1)
    hnsw_m: int = Field(default=32, ge=4)
    hnsw_ef_search: int = Field(default=128, ge=8)
    tombstone_rebuild_ratio: float = Field(default=0.2, gt=0.0, description="HNSW/GPU: rebuild past this")
    use_gpu_index: bool = Field(default=True, description="use faiss GPU indexes when a GPU is present")
    # search at scale (issue 16, app/search; docs/search.md)
    search_backend: Literal["faiss", "milvus"] = Field(default="faiss", description="vector search engine")
    search_memory_budget_mb: int = Field(default=8192, ge=1, description="auto index: RAM per gallery")
    search_exact_max_faces: int = Field(default=0, ge=0, description="auto: exact up to this; 0: 2**25/dim")
    search_rerank: int = Field(default=64, ge=1, description="SQ8/PQ candidates re-ranked from float vectors")
    search_target_recall: float = Field(default=0.99, ge=0.0, le=1.0, description="IVF nprobe tuned to this")
    search_snapshots: bool = Field(default=True, description="save indexes; start-up replays the tail")
    search_snapshot_dir: Path | None = Field(default=None, description="default: $MARGINFACE_HOME/indexes")
    search_snapshot_interval_s: float = Field(default=600.0, gt=0.0, description="save indexes this often")
    milvus_uri: str | None = Field(default=None, description="default: Milvus Lite $HOME/milvus.db")
    milvus_token: str = Field(default="", description="Milvus credentials (user:password or API key)")
    milvus_collection_prefix: str = "marginface"

    # multi-process consistency
    sync_interval_s: float = Field(default=0.5, gt=0.0, description="poll period of the change log")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.home).expanduser() / 'marginface.db'}"

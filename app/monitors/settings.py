"""Settings of monitors and event delivery, read from ``MARGINFACE_*`` variables like the server's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    """Each field ``foo`` is set by ``MARGINFACE_FOO``."""

    model_config = SettingsConfigDict(env_prefix="MARGINFACE_", extra="ignore")

    monitors: bool = Field(default=True, description="run monitors in this process (lease permitting)")
    monitor_file_dirs: list[Path] = Field(
        default=[], description="folders whose video files may be monitor sources (none: files refused)"
    )
    monitor_lease_s: float = Field(default=15.0, gt=0.5, description="an owner silent this long loses it")
    monitor_queue_frames: int = Field(default=8, ge=1, description="decoded frames waiting per monitor")
    monitor_detect_max_side: int = Field(
        default=640, ge=0, description="detect on frames scaled down to this longer side (0: full size)"
    )
    monitor_track_timeout_s: float = Field(default=1.0, gt=0.0, description="a track unseen this long ends")
    monitor_vote_frames: int = Field(default=3, ge=1, description="embedded frames that decide a track")
    monitor_unknown_wait_s: float = Field(
        default=1.5, ge=0.0, description="a track is called unknown only after this long (or when it ends)"
    )
    monitor_reconnect_max_s: float = Field(default=30.0, gt=0.0)
    monitor_open_timeout_s: float = Field(default=10.0, gt=0.0)
    cluster_threshold: float | None = Field(
        default=None, description="cosine for unknowns to share a cluster (default: the pack threshold)"
    )

    event_retention_days: float = Field(default=30.0, gt=0.0)
    event_retention_count: int = Field(default=100_000, ge=1)

    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_backoff_s: float = Field(default=1.0, gt=0.0, description="first retry delay; doubles each time")
    webhook_backoff_max_s: float = Field(default=300.0, gt=0.0)
    webhook_timeout_s: float = Field(default=10.0, gt=0.0)
    webhook_poll_s: float = Field(default=1.0, gt=0.0, description="how often pending deliveries are polled")

    mqtt_url: str | None = Field(default=None, description="mqtt://host:port; None: no MQTT")
    mqtt_prefix: str = "marginface"
    mqtt_discovery_prefix: str = Field(default="homeassistant", description="'' turns HA discovery off")
    mqtt_username: str | None = None
    mqtt_password: str | None = None

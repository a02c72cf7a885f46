"""Lifecycle test fixtures: the server fixtures (stores, apps, t1 faces) reused."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401 - fixtures re-exported for this folder
    astronaut_jpeg,
    client,
    make_client,
    make_settings,
    pg_url,
    store_url,
    t1_bgr,
    t1_faces,
)

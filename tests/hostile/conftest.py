"""Hostile-input fixtures: the server tests' apps and photos."""

from tests.server.conftest import (  # noqa: F401 - fixtures shared with the server tests
    astronaut_jpeg,
    client,
    make_client,
    make_settings,
    pg_url,
    store_url,
    t1_bgr,
    t1_faces,
)

"""Hostile-input fixtures: the server tests' apps and photos."""

from tests.server.conftest import (  # noqa: F401 - fixtures shared with the server tests
    astronaut_jpeg,
    make_client,
    make_settings,
    t1_bgr,
    t1_faces,
)

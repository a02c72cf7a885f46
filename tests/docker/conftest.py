"""The Docker engine and the CPU image, once per session (tests marked ``docker`` skip without an engine)."""

from __future__ import annotations

import pytest

from tests.docker import dockerctl
from tests.server.conftest import pg_url, t1_bgr, t1_faces  # noqa: F401 - shared fixtures


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The CPU image built from docker/Dockerfile by scripts/docker_build.sh (layers cached by the engine)."""
    reason = dockerctl.engine_missing()
    if reason:
        pytest.skip(reason)
    dockerctl.build_image()
    return dockerctl.IMAGE

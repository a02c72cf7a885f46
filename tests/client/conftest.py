"""A live ``marginface serve`` (uvicorn subprocess, API keys on) for the client tests, and an admin key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import t1_bgr, t1_faces  # noqa: F401 - shared photo fixtures
from tests.server.servers import REPO_ROOT, ServerProcess


@dataclass
class LiveServer:
    url: str
    admin_key: str
    process: ServerProcess


def start_server(tmp: Path, **env: str) -> LiveServer:
    """An authenticated server on a fresh SQLite store: create an admin key with the CLI, then serve."""
    db = f"sqlite:///{tmp / 'marginface.db'}"
    child_env = os.environ | {"MARGINFACE_DATABASE_URL": db}
    created = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "create", "--admin", "--name", "tests"],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip()
    server = ServerProcess(db, tmp / "server.log", **env)
    server.env = server.env | {"MARGINFACE_AUTH": "true"}
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(server.port)]
    with open(server.log_path, "ab") as log:
        server.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=server.env, stdout=log, stderr=log)
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.log_path.read_text()[-3000:]
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return LiveServer(server.url, key, server)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(server.log_path.read_text()[-3000:])


@pytest.fixture(scope="module")
def live(default_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("client-server"))
    yield server
    server.process.stop()

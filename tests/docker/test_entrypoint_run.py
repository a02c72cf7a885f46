"""Run the image's command line outside Docker: ENTRYPOINT + CMD parsed from docker/Dockerfile, the
Dockerfile's ENV with its paths mapped to temporary folders, the default pack installed the way the
build step does it; the server must answer /healthz and /readyz, and the HEALTHCHECK command must pass."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.docker import dockerfile_parse as dp

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _container_env(tmp_path: Path) -> dict[str, str]:
    """The Dockerfile's ENV with image paths (/data, /packs, /opt/venv/bin) mapped to this machine."""
    mapping = {
        "/opt/venv/bin": str(VENV_BIN),
        "/data": str(tmp_path / "data"),
        "/packs": str(tmp_path / "packs"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINFACE_")}
    for key, value in dp.env(DOCKERFILE).items():
        value = value.replace("$PATH", os.environ.get("PATH", ""))
        for image_path, local in mapping.items():
            value = value.replace(image_path, local)
        env[key] = value
    (tmp_path / "data").mkdir()
    return env


def _wait_ok(url: str, process: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_image_command_serves_health_and_readiness(tmp_path: Path) -> None:
    env = _container_env(tmp_path)
    assert env["MARGINFACE_HOME"] == str(tmp_path / "data")
    marginface = [str(VENV_BIN / "marginface")]
    # Build step: the default pack into MARGINFACE_PACKS_DIR; first-run step: an admin key in the store.
    subprocess.run(
        marginface + ["models", "install", "default", "--no-progress"],
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    assert (tmp_path / "packs" / "default" / "pack.json").is_file()
    subprocess.run(
        marginface + ["keys", "create", "--admin", "--name", "ops"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )

    command = dp.command(DOCKERFILE)
    port = _free_port()
    assert command[0] == "marginface" and command[-2:] == ["--port", "8000"]
    argv = marginface + command[1:-1] + [str(port)]  # the container's port 8000 published as `port`
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(argv, env=env, cwd=tmp_path / "data", stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait_ok(f"http://127.0.0.1:{port}/healthz", process, timeout=120) == 200
        assert _wait_ok(f"http://127.0.0.1:{port}/readyz", process, timeout=60) == 200
        _, check = dp.healthcheck(DOCKERFILE)
        probe = [sys.executable] + check[1:-1] + [check[-1].replace(":8000/", f":{port}/")]
        assert subprocess.run(probe, env=env, timeout=30).returncode == 0
        dead = [sys.executable] + check[1:-1] + [check[-1].replace(":8000/", f":{_free_port()}/")]
        assert subprocess.run(dead, env=env, timeout=30, capture_output=True).returncode != 0
        assert (tmp_path / "data" / "marginface.db").is_file()  # the store lives on the /data volume
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("server did not stop on SIGTERM within 30 s")
        log.close()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status reports it (143 in Docker).
    log_text = (tmp_path / "server.log").read_text()
    assert process.returncode in (0, -signal.SIGTERM), log_text[-2000:]
    assert "Application shutdown complete" in log_text

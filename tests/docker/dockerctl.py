"""Drive the Docker engine of scripts/docker_engine.sh from tests and benchmarks: is it there (and if not,
why), build the CPU image once, run containers with host networking, wait for readiness, clean up."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SOCKET = os.environ.get("MARGINFACE_DOCKER_SOCK", "/run/marginface-docker/docker.sock")
SETUP_NOTE = Path(os.environ.get("MARGINFACE_DOCKER_NOTE", "/tmp/marginface-docker-setup.txt"))
IMAGE = os.environ.get("MARGINFACE_TEST_IMAGE", "marginface:cpu")


def docker_env() -> dict[str, str]:
    return os.environ | {"DOCKER_HOST": os.environ.get("DOCKER_HOST", f"unix://{SOCKET}")}


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """``docker ARGS`` against the engine; stdout/stderr captured as text."""
    done = subprocess.run(
        ["docker", *args], env=docker_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def engine_missing() -> str | None:
    """None when an engine answers; else why not (scripts/ci/setup_docker.sh leaves its reason in a note)."""
    try:
        if docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode == 0:
            return None
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        reason = f"docker client unusable: {exc}"
    else:
        reason = f"no Docker engine answers at {docker_env()['DOCKER_HOST']}"
    if SETUP_NOTE.is_file():
        reason += f" ({SETUP_NOTE.read_text().strip()})"
    return reason + "; start one with scripts/docker_engine.sh start"


def build_image(tag: str = IMAGE, timeout: float = 1800) -> float:
    """scripts/docker_build.sh (local base, wheelhouse, cached layers); returns wall seconds."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "scripts/docker_build.sh", tag],
        cwd=REPO,
        env=docker_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"image build failed:\n{done.stderr[-4000:]}")
    return time.monotonic() - started


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_detached(name: str, args: list[str], command: list[str], image: str = IMAGE) -> None:
    docker("run", "-d", "--name", name, "--network", "host", *args, image, *command)


def wait_ready(url: str, name: str, timeout: float = 120, path: str = "/readyz") -> float:
    """Seconds until ``url + path`` answers 200; raises with the container's log when it does not."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        state = docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
        if state == "false":
            break
        time.sleep(0.1)
    logs = docker("logs", "--tail", "60", name, check=False)
    raise AssertionError(f"{name} not ready at {url}{path}:\n{logs.stdout}\n{logs.stderr}")


def remove(*names: str, volumes: tuple[str, ...] = ()) -> None:
    for name in names:
        docker("rm", "-f", "-v", name, check=False)
    for volume in volumes:
        docker("volume", "rm", "-f", volume, check=False)

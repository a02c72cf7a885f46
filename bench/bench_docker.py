"""The CPU image: size, build time (from nothing and with cached layers) and cold start to ready, beside the
same server started outside Docker from the virtualenv in the same run.

    python -m bench.bench_docker [--quick] [--write]

Needs the engine of scripts/docker_engine.sh (started here if it is not running). ``--quick`` skips the
build from nothing (``docker build --no-cache``, minutes with the vfs storage driver).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.results import BENCH_DIR, main_for
from tests.docker import dockerctl as dc
from tests.server.servers import free_port

REPO = BENCH_DIR.parent
TITLE = "Docker image (CPU): size, build time, cold start"


def _cold_start_docker(image: str) -> float:
    """docker run (fresh container, fresh volume, no auth) until /readyz answers 200."""
    name, volume, port = dc.unique("mf-bench"), dc.unique("mf-bench-data"), free_port()
    try:
        started = time.monotonic()
        dc.run_detached(
            name,
            ["-v", f"{volume}:/data"],
            ["serve", "--no-auth", "--host", "127.0.0.1", "--port", str(port)],
            image=image,
        )
        dc.wait_ready(f"http://127.0.0.1:{port}", name)
        return time.monotonic() - started
    finally:
        dc.remove(name, volumes=(volume,))


def _cold_start_venv() -> float:
    """The same command from the virtualenv (fresh SQLite store, the default pack already installed)."""
    with tempfile.TemporaryDirectory(prefix="mf-bench-") as home:
        env = os.environ | {
            "MARGINFACE_HOME": home,
            "MARGINFACE_PACKS_DIR": str(Path.home() / ".marginface" / "packs"),
        }
        packs = Path(env["MARGINFACE_PACKS_DIR"])
        if not (packs / "default").is_dir():
            subprocess.run(
                [sys.executable, "-m", "cli.main", "models", "install", "default", "--no-progress"],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
        port = free_port()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--no-auth", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while time.monotonic() - started < 120:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise RuntimeError("the virtualenv server did not become ready in 120 s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def run(quick: bool) -> list[dict]:
    reason = dc.engine_missing()
    if reason:
        started = subprocess.run(["bash", "scripts/docker_engine.sh", "start"], cwd=REPO, capture_output=True)
        reason = dc.engine_missing() if started.returncode == 0 else reason
    if reason:
        return [{"title": TITLE, "skipped": reason}]
    rows = []
    if not quick:
        dc.build_image()  # the wheelhouse and base image exist before the timed build from nothing
        os.environ["MARGINFACE_DOCKER_BUILD_ARGS"] = "--no-cache"
        try:
            seconds = dc.build_image()
        finally:
            os.environ.pop("MARGINFACE_DOCKER_BUILD_ARGS")
        rows.append(
            ["build from nothing (`--no-cache`; wheelhouse and base image present)", f"{seconds:.0f} s"]
        )
    rows.append(["rebuild, every layer cached (scripts/docker_build.sh)", f"{dc.build_image():.1f} s"])
    size = int(dc.docker("image", "inspect", dc.IMAGE, "--format", "{{.Size}}").stdout.strip())
    base = int(
        dc.docker("image", "inspect", "marginface-base:bookworm", "--format", "{{.Size}}").stdout.strip()
    )
    rows.append(["image size", f"{size / 1e6:.0f} MB (base bookworm minbase {base / 1e6:.0f} MB)"])
    repeats = 2 if quick else 3
    docker_s = statistics.median(_cold_start_docker(dc.IMAGE) for _ in range(repeats))
    venv_s = statistics.median(_cold_start_venv() for _ in range(repeats))
    rows.append([f"cold start to /readyz 200, median of {repeats}: container", f"{docker_s:.1f} s"])
    rows.append(
        [
            f"cold start to /readyz 200, median of {repeats}: same server from the virtualenv (peer)",
            f"{venv_s:.1f} s",
        ]
    )
    driver = dc.docker("info", "--format", "{{.Driver}} (server {{.ServerVersion}})").stdout.strip()
    notes = [
        f"Engine: scripts/docker_engine.sh, storage driver {driver}, BuildKit, host networking. With the vfs "
        "driver every layer and container is a full copy (a container took over 2 minutes to create here).",
        "Build from nothing: every layer rebuilt (`--no-cache`), the base image and the wheelhouse present "
        "(making them is a one-off per machine). Rebuild: nothing changed, so the time is the context "
        "transfer, cache checks and tagging.",
        "Cold start: `docker run` of a new container on a new volume until /readyz answers (store migrated, "
        "default pack loaded); the peer runs `marginface serve` on a new SQLite store. The CPU was shared "
        "with other work.",
    ]
    return [{"title": TITLE, "columns": ["what", "measured"], "rows": rows, "notes": notes}]


if __name__ == "__main__":
    main_for(run, __doc__)

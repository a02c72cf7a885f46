"""A live ``marginface serve`` (auth on) for the browser tests, and Debian's Chromium for Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.server.servers import REPO_ROOT, free_port

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """Debian's Chromium (``MARGINFACE_CHROMIUM`` overrides), or None when it is not installed."""
    wanted = os.environ.get("MARGINFACE_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).is_file() else None
    for path in CHROMIUM_CANDIDATES:
        if Path(path).is_file():
            return path
    return shutil.which("chromium")


def artifacts_dir() -> Path:
    """Where screenshots go: ``$MARGINFACE_TEST_ARTIFACTS/console`` or ``out/test-artifacts/console``."""
    root = Path(os.environ.get("MARGINFACE_TEST_ARTIFACTS") or REPO_ROOT / "out" / "test-artifacts")
    path = root / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_keys(database_url: str) -> dict[str, str]:
    """Migrate a fresh store and create an admin and a plain key in it; name → token."""
    from app.store.db import make_engine
    from app.store.keys import KeyStore
    from app.store.migrate import upgrade
    from app.store.repository import Repository

    engine = make_engine(database_url)
    upgrade(engine)
    store = KeyStore(Repository(engine))
    tokens = {
        "admin": store.create("console-admin", True)[0],
        "plain": store.create("console-plain", False)[0],
    }
    engine.dispose()
    return tokens


class LiveServer:
    """``python -m cli.main serve`` with auth on, on a free loopback port; stopped by ``stop()``."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = os.environ | {"MARGINFACE_DATABASE_URL": database_url, "MARGINFACE_AUTH": "true"}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> LiveServer:
        command = [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

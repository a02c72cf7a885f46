"""A live ``marginface serve`` (auth on) for the browser tests, and Debian's Chromium for Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.server.servers import REPO_ROOT, ServerProcess

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


class LiveServer(ServerProcess):
    """``python -m cli.main serve`` with auth on, on a free loopback port; stopped by ``stop()``."""

    def __init__(self, database_url: str, log_path: Path) -> None:
        super().__init__(database_url, log_path, auth=True)

    def start(self, timeout: float = 120.0) -> LiveServer:
        super().start(timeout)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

"""Real ``marginface serve`` subprocesses for tests that need a process (kill -9, two servers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m cli.main serve`` on a free loopback port with the given store (``--no-auth`` unless
    ``auth``)."""

    def __init__(self, database_url: str, log_path: Path, *, auth: bool = False, **env: str) -> None:
        self.auth = auth
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = (
            os.environ | {"MARGINFACE_DATABASE_URL": database_url, "MARGINFACE_SYNC_INTERVAL_S": "0.2"} | env
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        command = [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)]
        command += [] if self.auth else ["--no-auth"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

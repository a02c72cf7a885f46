"""Retries on 503 + Retry-After against a saturated live server, and ``marginface enroll DIR --server``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from marginface.client import AsyncClient, Client, RetryPolicy, Unavailable
from tests.client.conftest import start_server
from tests.server.conftest import encode_jpeg
from tests.server.servers import REPO_ROOT


class CountingTransport(httpx.AsyncHTTPTransport):
    """The real transport, counting the statuses it saw (to prove the client retried)."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture(scope="module")
def saturated(default_pack: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server that admits one image request at a time (beyond: 503 busy, Retry-After: 1)."""
    server = start_server(tmp_path_factory.mktemp("saturated"), MARGINFACE_MAX_CONCURRENT_REQUESTS="1")
    yield server
    server.process.stop()


def _burst(url: str, key: str, image: bytes, retry: RetryPolicy, n: int = 8):
    transport = CountingTransport()

    async def main():
        async with AsyncClient(url, api_key=key, retry=retry, transport=transport) as amf:
            return await asyncio.gather(*(amf.detect(image) for _ in range(n)), return_exceptions=True)

    started = time.monotonic()
    results = asyncio.run(main())
    return results, transport.statuses, time.monotonic() - started


def test_503_is_typed_without_retries_and_retried_after_retry_after(saturated, t1_image_path: Path) -> None:
    image = t1_image_path.read_bytes()
    results, statuses, _ = _burst(saturated.url, saturated.admin_key, image, RetryPolicy(retries=0))
    busy = [r for r in results if isinstance(r, Unavailable)]
    assert busy, f"no request was refused: {statuses}"
    assert all(r.code == "busy" and r.status == 503 for r in busy)
    assert all(len(r["faces"]) == 6 for r in results if not isinstance(r, Exception))

    results, statuses, elapsed = _burst(saturated.url, saturated.admin_key, image, RetryPolicy(retries=20))
    assert all(not isinstance(r, Exception) and len(r["faces"]) == 6 for r in results), results
    assert statuses.count(503) >= 1 and statuses.count(200) == 8
    assert elapsed >= 1.0  # at least one wait of the server's Retry-After: 1


def test_cli_enroll_directory_over_http(live, t1_faces, tmp_path: Path) -> None:
    for i, face in enumerate(t1_faces):
        (tmp_path / f"person{i}").mkdir()
        (tmp_path / f"person{i}" / "a.jpg").write_bytes(face["crop"])
    (tmp_path / "nobody").mkdir()
    (tmp_path / "nobody" / "blank.jpg").write_bytes(encode_jpeg(np.full((160, 160, 3), 90, np.uint8)))
    env = os.environ | {"MARGINFACE_KEY": live.admin_key}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "enroll", str(tmp_path), "--gallery", "cli", "--server", live.url],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "7 subjects, 7 images: 6 enrolled, 1 rejected (no_face: 1)" in done.stdout
    with Client(live.url, api_key=live.admin_key) as mf:
        names = {s["name"] for s in mf.list_subjects("cli")["subjects"]}
    assert names == {f"person{i}" for i in range(6)}

    wrong_key = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "enroll",
            str(tmp_path),
            "--gallery",
            "cli2",
            "--server",
            live.url,
            "--api-key",
            "mf_wrong",
        ],
        cwd=REPO_ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong_key.returncode == 1
    assert "401" in wrong_key.stderr, wrong_key.stderr

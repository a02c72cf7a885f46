"""A real server with the default limits keeps its peak RSS under 400 MB above idle while it is sent
40 MP decompression-bomb-like images one by one, as one 16-image enrolment and concurrently.
(bench/bench_hostile.py measures the full corpus; this is its short form.)"""

from __future__ import annotations

import base64
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench.bench_hostile import TARGET_MB, PeakRss, Server
from tests.hostile.corpus import png_header_only, png_stream, webp_big

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")


@pytest.mark.timeout(900)
def test_server_peak_memory_stays_bounded(default_pack: Path, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    webp = webp_big(8000, 5000)  # 1.6 KB, 40 MP with alpha
    png = png_stream(8000, 5000, bit_depth=16, colour=6)  # 16-bit RGBA, 40 MP
    home = tmp_path / "home"
    (home / "packs").mkdir(parents=True)
    (home / "packs" / "default").symlink_to(default_pack)
    with Server(home) as server, httpx.Client(base_url=server.url, timeout=600) as client:
        assert client.post("/galleries", json={"name": "g"}).status_code == 201
        r = client.post("/galleries/g/enroll", data={"subject": "a"}, files={"image": astronaut_jpeg})
        assert r.status_code == 201, r.text
        client.post("/identify", data={"gallery": "g"}, files={"image": astronaut_jpeg})
        idle_mb = server.rss_mb()
        statuses: Counter = Counter()
        with PeakRss(server.proc.pid) as peak:
            for data in (webp, png, png_header_only(30000, 30000)):
                statuses[client.post("/detect", files={"image": data}).status_code] += 1
            b64 = {"image": base64.b64encode(png).decode()}
            statuses[client.post("/detect", json=b64).status_code] += 1
            files = [("image", (f"{i}.webp", webp, "image/webp")) for i in range(16)]
            statuses[client.post("/galleries/g/enroll", data={"subject": "b"}, files=files).status_code] += 1

            def one(data: bytes) -> int:
                with httpx.Client(base_url=server.url, timeout=600) as own:
                    return own.post("/detect", files={"image": data}).status_code

            with ThreadPoolExecutor(8) as pool:
                statuses.update(pool.map(one, [webp] * 6))
        above = peak.peak_kib / 1024 - idle_mb
    print(f"peak RSS {above:.0f} MB above idle ({idle_mb:.0f} MB); statuses {dict(statuses)}")
    assert set(statuses) <= {200, 413, 422, 503}, statuses  # no 5xx but busy
    assert statuses[200] >= 4 and statuses[413] == 1
    assert above < TARGET_MB

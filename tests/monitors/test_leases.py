"""Each monitor runs in exactly one server process: leases in the store, taken over when the owner dies."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import text

from app.monitors.store import MonitorStore
from app.store.db import make_engine
from app.store.migrate import upgrade
from tests.monitors.conftest import wait_for
from tests.monitors.media import MjpegServer
from tests.server.conftest import encode_jpeg
from tests.server.servers import ServerProcess


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def lease_store(request, tmp_path) -> MonitorStore:
    sqlite = f"sqlite:///{tmp_path / 'leases.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for i in range(1, 4):
            conn.execute(text(
                "INSERT INTO monitors (id, name, source, gallery, fps, min_face, absence_s, options, "
                "created_at) VALUES (:i, :n, 'rtsp://x', 'g', 5, 40, 30, '{}', CURRENT_TIMESTAMP)"),
                {"i": i, "n": f"m{i}"})
    yield MonitorStore(engine)
    engine.dispose()


def test_concurrent_acquire_has_one_winner(lease_store: MonitorStore):
    """Eight 'processes' race for three monitors in rounds; per round and monitor exactly one holds it."""
    owners = [f"p{i}" for i in range(8)]
    for round_no in range(4):
        wins: list[tuple[str, int]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(owners))

        def contend(owner: str, barrier=barrier, lock=lock, wins=wins) -> None:
            barrier.wait()
            for monitor_id in (1, 2, 3):
                if lease_store.acquire(monitor_id, owner, ttl_s=0.6, health={"state": "x"}):
                    with lock:
                        wins.append((owner, monitor_id))

        threads = [threading.Thread(target=contend, args=(o,)) for o in owners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for monitor_id in (1, 2, 3):
            holders = [o for o, m in wins if m == monitor_id]
            assert len(holders) == 1, (round_no, monitor_id, holders)
        # the holder renews; nobody else gets it before expiry; after expiry someone does
        holder = next(o for o, m in wins if m == 1)
        other = next(o for o in owners if o != holder)
        assert lease_store.acquire(1, holder, 0.6, {}) and not lease_store.acquire(1, other, 0.6, {})
        time.sleep(0.8)
        assert lease_store.acquire(1, other, 0.6, {})
        time.sleep(0.8)  # every lease expired before the next round


def test_owner_killed_another_process_takes_over(default_pack, people, tmp_path, scene_frames):
    camera = MjpegServer(scene_frames, loop=True, plays=100).start()
    env = {"MARGINFACE_MONITOR_LEASE_S": "3", "MARGINFACE_HOME": str(default_pack.parent.parent)}
    url = f"sqlite:///{tmp_path / 'store.db'}"
    a = ServerProcess(url, tmp_path / "a.log", **env).start()
    b = ServerProcess(url, tmp_path / "b.log", **env).start()
    try:
        api = {s.url: httpx.Client(base_url=s.url, timeout=30) for s in (a, b)}
        first = api[a.url]
        assert first.post("/galleries", json={"name": "cam"}).status_code == 201
        r = first.post("/galleries/cam/enroll", data={"subject": "person0"},
                       files={"image": ("p.jpg", encode_jpeg(people["person0"]), "image/jpeg")})
        assert r.status_code == 201
        assert first.post("/monitors", json={"name": "hall", "source": camera.url, "gallery": "cam",
                                             "absence_s": 1.5}).status_code == 201

        def running_owner(client: httpx.Client) -> str | None:
            m = client.get("/monitors/hall").json()
            return m["owner"] if m["health"]["frames_processed"] > 0 else None

        owner = wait_for(lambda: running_owner(first), 30, "the monitor to run somewhere")
        # both processes agree on the one owner
        assert api[b.url].get("/monitors/hall").json()["owner"] == owner
        pids = {str(a.proc.pid): a, str(b.proc.pid): b}
        dead = pids[owner.split(":")[1]]
        survivor = b if dead is a else a
        assert camera.clients == 1  # one process reads the camera, not two
        dead.kill9()
        new_owner = wait_for(lambda: (o := running_owner(api[survivor.url])) and o != owner and o, 20,
                             "the survivor to take the lease over")
        assert new_owner.split(":")[1] == str(survivor.proc.pid)
        assert camera.clients == 2
    finally:
        a.stop()
        b.stop()
        camera.stop()

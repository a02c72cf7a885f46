"""Scale-out for real: two server containers on one PostgreSQL database (this machine's server, reached
through host networking; a fresh database per test). A write through one is seen by the other within the
sync interval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from marginface.client import Client, NotFound
from tests.docker import dockerctl as dc
from tests.server.servers import free_port

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

SYNC_S = 0.5


def _seen_within(check, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not seen within {timeout} s")


def test_two_containers_share_one_postgres(
    docker_image: str, pg_url: str, t1_faces, t1_image_path: Path
) -> None:
    env = ["-e", f"MARGINFACE_DATABASE_URL={pg_url}", "-e", f"MARGINFACE_SYNC_INTERVAL_S={SYNC_S}"]
    key = dc.docker(
        "run", "--rm", "--network", "host", *env, docker_image, "keys", "create", "--admin"
    ).stdout
    key = key.strip()
    names = [dc.unique("mf-a"), dc.unique("mf-b")]
    urls = []
    try:
        for name in names:
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            dc.run_detached(name, env, ["serve", "--host", "127.0.0.1", "--port", str(port)])
        for name, url in zip(names, urls, strict=True):
            dc.wait_ready(url, name)
        with Client(urls[0], api_key=key) as a, Client(urls[1], api_key=key) as b:
            a.create_gallery("shared")
            for i, face in enumerate(t1_faces):
                assert a.enroll("shared", f"person{i}", face["crop"])["enrolled"] == 1

            def b_index_has_all() -> bool:
                try:
                    return b.get_gallery("shared")["index"]["faces"] == 6
                except NotFound:
                    return False

            # the write went to A; B's in-memory index follows the store's change log every SYNC_S seconds
            delay = _seen_within(b_index_has_all, timeout=10)
            assert delay <= SYNC_S + 1.5, f"B saw the enrollments after {delay:.2f} s"
            faces = b.identify(t1_image_path.read_bytes(), "shared")["faces"]
            assert sorted(f["match"]["name"] for f in faces if f["match"]) == [f"person{i}" for i in range(6)]

            # and the other way round: a delete through B leaves A's results
            b.delete_subject("shared", "person3")

            def a_lost_person3() -> bool:
                faces = a.identify(t1_image_path.read_bytes(), "shared")["faces"]
                return "person3" not in {f["match"]["name"] for f in faces if f["match"]}

            _seen_within(a_lost_person3, timeout=SYNC_S * 4 + 5)
    finally:
        dc.remove(*names)

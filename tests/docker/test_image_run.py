"""The CPU image for real: built from docker/Dockerfile, run by a Docker engine with a volume. Health, an
admin key through the entrypoint, enroll and identify over HTTP with t1.jpg's faces, data kept across a
restart, a non-root process, SIGTERM draining requests in flight."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from marginface.client import Client
from tests.docker import dockerctl as dc
from tests.server.servers import free_port

pytestmark = pytest.mark.docker


def _enroll_and_identify(client: Client, t1_faces: list[dict], t1_image: bytes) -> None:
    client.create_gallery("staff")
    for i, face in enumerate(t1_faces):
        assert client.enroll("staff", f"person{i}", face["crop"])["enrolled"] == 1
    _assert_identifies(client, t1_image)


def _assert_identifies(client: Client, t1_image: bytes) -> None:
    faces = sorted(client.identify(t1_image, "staff")["faces"], key=lambda f: f["box"][0])
    assert [f["match"]["name"] if f["match"] else None for f in faces] == [f"person{i}" for i in range(6)]


def test_image_serves_keeps_data_runs_as_non_root_and_drains_on_sigterm(
    docker_image: str, t1_faces, t1_image_path: Path
) -> None:
    name, volume = dc.unique("mf-cpu"), dc.unique("mf-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        dc.docker("volume", "create", volume)
        # the documented first step: an admin key, through the image's entrypoint (`marginface`)
        created = dc.docker("run", "--rm", "-v", f"{volume}:/data", docker_image, "keys", "create", "--admin")
        key = created.stdout.strip()
        assert key and "admin key" in created.stderr
        dc.run_detached(name, ["-v", f"{volume}:/data"], serve)
        dc.wait_ready(url, name)
        t1_image = t1_image_path.read_bytes()
        with Client(url, api_key=key) as client:
            assert client.health()["status"] == "ok"
            _enroll_and_identify(client, t1_faces, t1_image)

        # non-root: PID 1 (the server) and the store file on the volume belong to uid 10001
        status = dc.docker("exec", name, "cat", "/proc/1/status").stdout
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {"10001"}
        owner = dc.docker("exec", name, "stat", "-c", "%u %n", "/data/marginface.db").stdout.split()[0]
        assert owner == "10001"

        dc.docker("restart", "-t", "30", name, timeout=120)
        dc.wait_ready(url, name)
        with Client(url, api_key=key) as client:
            assert client.get_gallery("staff")["faces"] == 6
            _assert_identifies(client, t1_image)

            # SIGTERM while requests are in flight: each of them still gets its answer, then the process exits
            answers: list[int] = []
            finished: list[float] = []

            def identify() -> None:
                with Client(url, api_key=key) as own:
                    answers.append(len(own.identify(t1_image, "staff")["faces"]))
                    finished.append(time.monotonic())

            threads = [threading.Thread(target=identify) for _ in range(6)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            signalled = time.monotonic()
            dc.docker("kill", "--signal", "TERM", name)
            for thread in threads:
                thread.join(timeout=120)
        assert answers == [6] * 6, answers
        assert max(finished) > signalled, "no request was still in flight at SIGTERM"
        exit_code = dc.docker("wait", name, timeout=60).stdout.strip()
        done = dc.docker("logs", name)
        logs = done.stdout + done.stderr
        assert "Waiting for application shutdown" in logs and "Application shutdown complete" in logs
        assert exit_code in ("0", "143"), exit_code
    finally:
        dc.remove(name, volumes=(volume,))

"""Real server processes: restart, kill -9 during enrollments, two processes sharing one PostgreSQL."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.server.conftest import jpeg_file
from tests.server.servers import ServerProcess


def test_restart_finds_the_same_data(make_client, store_url, t1_faces):
    first = make_client(store_url)
    assert first.post("/galleries", json={"name": "keep", "index": "hnsw"}).status_code == 201
    r = first.post(
        "/galleries/keep/enroll", data={"subject": "p1"}, files={"image": jpeg_file(t1_faces[1]["crop"])}
    )
    face_id = r.json()["results"][0]["face_id"]
    first.__exit__(None, None, None)

    second = make_client(store_url)
    gallery = second.get("/galleries/keep").json()
    assert gallery["faces"] == 1 and gallery["index"]["faces"] == 1 and gallery["index"]["kind"] == "hnsw"
    r = second.post("/identify", data={"gallery": "keep"}, files={"image": jpeg_file(t1_faces[1]["crop"])})
    assert r.json()["faces"][0]["match"]["face_id"] == face_id


def test_kill_9_during_enrollments_loses_no_acknowledged_face(default_pack, tmp_path, t1_faces):
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    acknowledged: list[int] = []
    stop = threading.Event()

    def enroll_stream(base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                crop = t1_faces[i % len(t1_faces)]["crop"]
                try:
                    r = http.post(
                        "/galleries/d/enroll", data={"subject": f"s{i}"}, files={"image": jpeg_file(crop)}
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: that one was not acknowledged
                if r.status_code == 201:
                    acknowledged.append(r.json()["results"][0]["face_id"])

    server = ServerProcess(url, tmp_path / "server.log").start()
    try:
        assert httpx.post(f"{server.url}/galleries", json={"name": "d"}).status_code == 201
        writer = threading.Thread(target=enroll_stream, args=(server.url,))
        writer.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill9()  # while the writer is still sending
        stop.set()
        writer.join(timeout=30)
    finally:
        server.stop()
    assert len(acknowledged) >= 12

    with ServerProcess(url, tmp_path / "server.log") as again:
        stored = set()
        subjects = httpx.get(f"{again.url}/galleries/d/subjects", params={"limit": 1000}).json()["subjects"]
        for subject in subjects:
            faces = httpx.get(f"{again.url}/galleries/d/subjects/{subject['id']}/faces").json()["faces"]
            stored.update(f["id"] for f in faces)
        assert set(acknowledged) <= stored
        assert httpx.get(f"{again.url}/readyz").status_code == 200  # the index holds exactly the stored faces
        r = httpx.post(
            f"{again.url}/identify", data={"gallery": "d"}, files={"image": jpeg_file(t1_faces[0]["crop"])}
        )
        # the same face is enrolled under several subjects here, so an open-set decision may call it
        # ambiguous (match null); the index answering with the stored face is what this test is about
        best = r.json()["faces"][0]["candidates"][0]
        assert best["similarity"] > 0.9 and best["face_id"] in set(acknowledged) | stored


@pytest.mark.postgres
def test_two_processes_on_one_postgresql_see_each_others_writes(default_pack, pg_url, tmp_path, t1_faces):
    query = {"image": jpeg_file(t1_faces[2]["crop"])}
    with ServerProcess(pg_url, tmp_path / "a.log") as a, ServerProcess(pg_url, tmp_path / "b.log") as b:
        assert httpx.post(f"{a.url}/galleries", json={"name": "shared"}).status_code == 201
        assert (
            httpx.post(
                f"{a.url}/galleries/shared/enroll",
                data={"subject": "other"},
                files={"image": jpeg_file(t1_faces[0]["crop"])},
            ).status_code
            == 201
        )
        # B loads the gallery now, so what follows must reach it through the change log
        r = httpx.post(f"{b.url}/identify", data={"gallery": "shared"}, files=query)
        assert r.status_code == 200 and r.json()["faces"][0]["match"] is None

        r = httpx.post(f"{a.url}/galleries/shared/enroll", data={"subject": "target"}, files=query)
        assert r.status_code == 201
        acknowledged = time.monotonic()
        while True:
            match = httpx.post(f"{b.url}/identify", data={"gallery": "shared"}, files=query).json()["faces"][
                0
            ]["match"]
            if match is not None:
                break
            assert time.monotonic() - acknowledged < 2.0, "B did not see A's enrollment within 2 s"
            time.sleep(0.05)
        assert match["name"] == "target"

        assert httpx.delete(f"{b.url}/galleries/shared/subjects/target").status_code == 200
        deleted = time.monotonic()
        while True:
            match = httpx.post(f"{a.url}/identify", data={"gallery": "shared"}, files=query).json()["faces"][
                0
            ]["match"]
            if match is None:
                break
            assert time.monotonic() - deleted < 2.0, "A still finds a subject B deleted, after 2 s"
            time.sleep(0.05)

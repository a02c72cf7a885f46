"""The server's default on CPU (issue 17): photos analysed, and /identify's faces embedded, in worker
processes. The answers equal those of in-process analysis on the same store; a worker killed while it
analyses a photo costs that one request a 503 ``analysis_worker_lost`` (an idle one costs none), never the
server, and is replaced."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tests.server.conftest import enroll_t1, jpeg_file


def _identify(client, photo: bytes) -> list[dict]:
    r = client.post("/identify", data={"gallery": "t1", "top_k": "3"}, files={"image": jpeg_file(photo)})
    assert r.status_code == 200, r.text
    return r.json()["faces"]


def _summary(faces: list[dict]) -> list[tuple]:
    return [
        (tuple(round(v) for v in f["box"]), f["decision"], (f["match"] or {}).get("name"),
         [(c["name"], c["similarity"]) for c in f["candidates"]])
        for f in faces
    ]


def test_processes_answer_as_threads_do(make_client, tmp_path: Path, t1_faces, t1_image_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with_processes = make_client(url, analysis_processes=2)
    engine = with_processes.app.state.ctx.engines.get()
    assert engine.pool is not None and engine.pool.processes == 2
    enroll_t1(with_processes, t1_faces)  # enrollment analyses and embeds the kept face in the workers
    assert engine.embedded_in_workers == len(t1_faces)
    in_threads = make_client(url, analysis_processes=0)
    assert in_threads.app.state.ctx.engines.get().pool is None
    # the stored embeddings equal those the server's own process makes of the same photos
    repo = with_processes.app.state.ctx.repo
    stored = np.concatenate([chunk[2] for chunk in repo.iter_embeddings(repo.get_gallery("t1").id)])
    local = in_threads.app.state.ctx.engines.get()
    expected = []
    for face in t1_faces:
        analysis = local._analyse_sync(jpeg_file(face["crop"])[1], 20)
        largest = max(range(len(analysis.faces)), key=lambda i: analysis.faces[i].area)
        expected.append(local.pipeline.embed_crops(analysis.crops[largest : largest + 1])[0])
    assert np.min(np.sum(stored * np.stack(expected), axis=1)) > 0.9999

    photo = t1_image_path.read_bytes()
    faces = _identify(with_processes, photo)
    assert len(faces) == 6 and all(f["match"] for f in faces)
    assert engine.embedded_in_workers == len(t1_faces) + 6
    assert _summary(faces) == _summary(_identify(in_threads, photo))
    for path in ("/detect", "/verify"):
        files = {"image": jpeg_file(photo)} if path == "/detect" else {
            "image1": jpeg_file(t1_faces[0]["crop"]), "image2": jpeg_file(t1_faces[0]["crop"])}
        a, b = with_processes.post(path, files=files), in_threads.post(path, files=files)
        assert a.status_code == b.status_code == 200 and a.json() == b.json()
    junk = {"image": jpeg_file(b"\xff\xd8junk")}
    bad = with_processes.post("/identify", data={"gallery": "t1"}, files=junk)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "corrupt_image"


def test_killed_worker_costs_only_its_request(
    make_client, tmp_path: Path, t1_faces, t1_image_path: Path
) -> None:
    client = make_client(f"sqlite:///{tmp_path / 'store.db'}", analysis_processes=2)
    enroll_t1(client, t1_faces)
    pool = client.app.state.ctx.engines.get().pool
    photo = t1_image_path.read_bytes()
    # an idle worker killed: noticed on its socket and replaced, no request fails
    os.kill(pool.pids()[0], signal.SIGKILL)
    for _ in range(300):
        if pool.replaced == 1 and pool.ready_count() == 2:
            break
        time.sleep(0.1)
    assert pool.replaced == 1 and pool.ready_count() == 2
    assert [len(_identify(client, photo)) for _ in range(3)] == [6, 6, 6]
    # a worker killed while it analyses a request's photo: that request gets a 503 to retry
    with ThreadPoolExecutor(1) as background:
        reply = background.submit(
            client.post, "/identify", data={"gallery": "t1"}, files={"image": jpeg_file(photo)}
        )
        for _ in range(20000):
            if pool.busy_pids():
                os.kill(pool.busy_pids()[0], signal.SIGKILL)
                break
            time.sleep(0.0005)
        r = reply.result(timeout=120)
    assert r.status_code == 503 and r.json()["error"]["code"] == "analysis_worker_lost", r.text
    assert len(_identify(client, photo)) == 6


def test_workers_that_keep_dying_make_the_server_not_ready(
    make_client, tmp_path: Path, t1_image_path: Path
) -> None:
    client = make_client(f"sqlite:///{tmp_path / 'store.db'}", analysis_processes=2, auth=False)
    assert client.get("/readyz").status_code == 200
    pool = client.app.state.ctx.engines.get().pool
    # replacements that cannot start (their pack is gone): no other way to make a fresh worker die early
    pool._args = (str(tmp_path / "no-such-pack"), *pool._args[1:])
    client.post("/detect", files={"image": jpeg_file(t1_image_path.read_bytes())})  # attaches the pool
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)
    for _ in range(600):
        if pool.gave_up:
            break
        time.sleep(0.1)
    assert pool.gave_up and pool.replaced >= 3
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    r = client.post("/detect", files={"image": jpeg_file(t1_image_path.read_bytes())})
    assert r.status_code == 503 and r.json()["error"]["code"] == "analysis_worker_lost"

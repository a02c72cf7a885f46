"""Named sequences and races against a real server process (SQLite, then PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.integrity.servers import Server

TRIALS = 8


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory, default_pack):
    folder = tmp_path_factory.mktemp("races")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'store.db'}"
    else:
        url = _module_pg_url(request)
    with Server(url, folder / "server.log", workers=1) as running:
        yield running


def _module_pg_url(request) -> str:
    import uuid

    import psycopg

    from tests.server.conftest import PG_ADMIN_URL, _pg_reachable

    if not _pg_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"mf_races_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _img(data: bytes) -> dict:
    return {"image": ("photo.jpg", data, "image/jpeg")}


def _best(http: httpx.Client, gallery: str, data: bytes) -> list[dict]:
    r = http.post("/identify", data={"gallery": gallery, "top_k": "20"}, files=_img(data))
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    largest = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    return [c for c in largest["candidates"] if c["similarity"] >= 0.9]


def _together(*calls, delays=None):
    """Run the calls at the same moment (a barrier; then each waits its delay), return their responses."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)
    delays = delays or [0.0] * len(calls)

    def run(i, call):
        barrier.wait()
        time.sleep(delays[i])
        out[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_enroll_a_b_delete_b_face_enroll_c_finds_c(server, t1_faces):
    """The issue's sequence: c got b's reused id and was dropped from search, /readyz stuck at 503."""
    a, b, c = (face["crop"] for face in t1_faces[:3])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/galleries", json={"name": "seq"}).status_code == 201
        ra = http.post("/galleries/seq/enroll", data={"subject": "a"}, files=_img(a))
        rb = http.post("/galleries/seq/enroll", data={"subject": "b"}, files=_img(b))
        assert ra.status_code == rb.status_code == 201
        b_face = rb.json()["results"][0]["face_id"]
        assert http.delete(f"/galleries/seq/faces/{b_face}").status_code == 200
        rc = http.post("/galleries/seq/enroll", data={"subject": "c"}, files=_img(c))
        assert rc.status_code == 201
        c_face = rc.json()["results"][0]["face_id"]
        assert c_face > b_face  # never reused
        found = _best(http, "seq", c)
        assert [(x["name"], x["face_id"]) for x in found] == [("c", c_face)]
        assert _best(http, "seq", b) == []
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text


def test_same_new_subject_name_face_and_no_face_at_once_keeps_the_face(server, t1_faces, no_face_jpeg):
    """The failing request's "no empty subject" clean-up deleted the subject the other one filled."""
    face = t1_faces[3]["crop"]
    outcomes: Counter = Counter()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/galleries", json={"name": "same-name"}).status_code == 201
        for trial in range(TRIALS):
            name = f"x{trial}"

            def enroll(data: bytes, name=name) -> httpx.Response:
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    return own.post("/galleries/same-name/enroll", data={"subject": name}, files=_img(data))

            with_face, without = _together(lambda: enroll(face), lambda: enroll(no_face_jpeg))
            outcomes[(with_face.status_code, without.status_code)] += 1
            assert with_face.status_code == 201, with_face.text
            assert without.status_code == 422, without.text
            subject = http.get(f"/galleries/same-name/subjects/{name}")
            assert subject.status_code == 200 and subject.json()["faces"] == 1, subject.text
        found = {x["name"] for x in _best(http, "same-name", face)}
        assert found == {f"x{t}" for t in range(TRIALS)}
        assert http.get("/readyz").status_code == 200


@pytest.mark.parametrize("by_name", [False, True], ids=["into-subject-id", "by-name"])
def test_enroll_while_the_subject_is_deleted_ends_clear(server, t1_faces, by_name):
    """Enroll into a subject while it is deleted: 201/404 and 200/404, never 500, never a zombie."""
    face = t1_faces[4]["crop"]
    gallery = f"del-race-{by_name}"
    seen: Counter = Counter()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/galleries", json={"name": gallery}).status_code == 201
        for trial in range(TRIALS):
            name = f"v{trial}"
            started = time.perf_counter()
            first = http.post(f"/galleries/{gallery}/enroll", data={"subject": name}, files=_img(face))
            latency = time.perf_counter() - started
            assert first.status_code == 201
            sid = first.json()["subject"]["id"]

            def enroll(sid=sid, name=name) -> httpx.Response:
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    if by_name:
                        form = {"subject": name}
                        return own.post(f"/galleries/{gallery}/enroll", data=form, files=_img(face))
                    return own.post(f"/galleries/{gallery}/subjects/{sid}/faces", files=_img(face))

            def delete(sid=sid) -> httpx.Response:
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    return own.delete(f"/galleries/{gallery}/subjects/{sid}")

            # the delete lands at a different point of the enrollment each trial: before, during, after
            enrolled, deleted = _together(enroll, delete, delays=[0.0, latency * trial / (TRIALS - 1)])
            seen[(enrolled.status_code, deleted.status_code)] += 1
            assert enrolled.status_code in (201, 404), enrolled.text
            assert deleted.status_code == 200, deleted.text
            after = http.get(f"/galleries/{gallery}/subjects/{name}")
            if by_name and enrolled.status_code == 201 and enrolled.json()["subject"]["id"] != sid:
                # the enrollment came after the delete and created the subject anew, with its face
                assert after.status_code == 200 and after.json()["faces"] == 1
                assert http.delete(f"/galleries/{gallery}/subjects/{after.json()['id']}").status_code == 200
            else:
                assert after.status_code == 404, after.text  # no zombie subject
            assert _best(http, gallery, face) == []
        subjects = http.get(f"/galleries/{gallery}/subjects").json()
        assert subjects["total"] == 0 and http.get("/readyz").status_code == 200
    print(dict(seen))

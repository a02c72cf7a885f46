"""``marginface.client`` against a live server (uvicorn subprocess, API keys on): every endpoint group,
typed errors from the error bodies, sync and async, real t1.jpg faces."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from marginface.client import (
    APIError,
    AsyncClient,
    Client,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    RetryPolicy,
    Unauthorized,
    UnprocessableEntity,
)
from tests.server.conftest import encode_jpeg
from tests.server.servers import free_port


@pytest.fixture
def mf(live) -> Client:
    with Client(live.url, api_key=live.admin_key) as client:
        yield client


def _enroll_t1(mf: Client, gallery: str, t1_faces: list[dict]) -> None:
    mf.create_gallery(gallery)
    for i, face in enumerate(t1_faces):
        result = mf.enroll(gallery, f"person{i}", face["crop"])
        assert result["enrolled"] == 1 and result["results"][0]["face_id"] > 0


def test_galleries_subjects_faces_identify_verify_detect(
    mf: Client, t1_faces, t1_image_path: Path, tmp_path: Path
) -> None:
    assert mf.health()["status"] == "ok"
    assert mf.ready()
    _enroll_t1(mf, "staff", t1_faces)
    assert "staff" in [g["name"] for g in mf.list_galleries()]
    assert mf.get_gallery("staff")["faces"] == 6

    page = mf.list_subjects("staff", limit=4)
    assert page["total"] == 6 and len(page["subjects"]) == 4 and page["next_after"] is not None
    rest = mf.list_subjects("staff", after=page["next_after"])
    assert len(rest["subjects"]) == 2

    # a second photo of person0 from a path on disk, into the existing subject
    path = tmp_path / "person0-again.jpg"
    crop = cv2.imdecode(np.frombuffer(t1_faces[0]["crop"], np.uint8), cv2.IMREAD_COLOR)
    path.write_bytes(encode_jpeg(cv2.flip(crop, 1)))
    added = mf.add_faces("staff", "person0", path)
    assert added["enrolled"] == 1
    faces = mf.list_faces("staff", "person0")["faces"]
    assert len(faces) == 2

    # every face of the group photo is matched to the right person (left to right = person0..5)
    result = mf.identify(t1_image_path, "staff", top_k=3)
    matched = sorted(result["faces"], key=lambda f: f["box"][0])
    assert [f["match"]["name"] if f["match"] else None for f in matched] == [f"person{i}" for i in range(6)]
    detected = mf.detect(t1_image_path.read_bytes())
    assert len(detected["faces"]) == 6

    same = mf.verify(t1_faces[2]["crop"], gallery="staff", subject="person2")
    other = mf.verify(t1_faces[2]["crop"], t1_faces[3]["crop"])
    assert same["match"] is True and other["match"] is False
    assert same["similarity"] > other["similarity"]

    renamed = mf.update_subject("staff", "person5", name="erin", metadata={"team": "b"})
    assert renamed["name"] == "erin" and mf.get_subject("staff", "erin")["metadata"] == {"team": "b"}

    mf.delete_face("staff", faces[1]["id"])
    assert len(mf.list_faces("staff", "person0")["faces"]) == 1
    mf.delete_subject("staff", "erin")
    with pytest.raises(NotFound) as missing:
        mf.get_subject("staff", "erin")
    assert missing.value.code == "subject_not_found" and missing.value.status == 404
    mf.delete_gallery("staff")
    with pytest.raises(NotFound):
        mf.get_gallery("staff")


def test_errors_are_typed_from_the_error_body(live, mf: Client, t1_faces) -> None:
    mf.create_gallery("errors")
    with pytest.raises(Conflict) as taken:
        mf.create_gallery("errors")
    assert taken.value.code and taken.value.message
    blank = encode_jpeg(np.full((200, 200, 3), 127, np.uint8))
    with pytest.raises(UnprocessableEntity) as refused:
        mf.enroll("errors", "nobody", blank)
    assert (
        refused.value.code == "no_face" and refused.value.details["results"][0]["error"]["code"] == "no_face"
    )
    with pytest.raises(NotFound):
        mf.get_subject("errors", "nobody")  # the refused enrollment left no empty subject behind
    with Client(live.url, api_key="") as anonymous, pytest.raises(Unauthorized) as no_key:
        anonymous.list_galleries()
    assert no_key.value.code == "missing_api_key"
    plain = mf.create_key("reader")["token"]
    with Client(live.url, api_key=plain) as reader:
        assert [g["name"] for g in reader.list_galleries()] == ["errors"]
        with pytest.raises(Forbidden):
            reader.delete_gallery("errors")
    assert mf.get_gallery("errors")["name"] == "errors"


def test_async_client_concurrent_identify(live, mf: Client, t1_faces, t1_image_path: Path) -> None:
    _enroll_t1(mf, "async", t1_faces)

    async def main() -> list[dict]:
        async with AsyncClient(live.url, api_key=live.admin_key) as amf:
            assert (await amf.get_gallery("async"))["faces"] == 6
            crops = [face["crop"] for face in t1_faces]
            return await asyncio.gather(*(amf.identify(crop, "async", top_k=1) for crop in crops))

    results = asyncio.run(main())
    assert [r["faces"][0]["match"]["name"] for r in results] == [f"person{i}" for i in range(6)]


def test_newer_endpoints_policy_migrate_monitors_events_webhooks(mf: Client, t1_faces) -> None:
    _enroll_t1(mf, "newer", t1_faces)
    policy = mf.get_policy("newer")
    assert isinstance(policy, dict) and policy
    started = time.monotonic()
    with pytest.raises(APIError) as unknown_pack:
        mf.migrate_gallery("newer", "no-such-pack", wait=True)
    assert unknown_pack.value.code == "pack_not_loaded" and "no-such-pack" in unknown_pack.value.message
    assert time.monotonic() - started < 0.2 or "Retry-After" in unknown_pack.value.response.headers
    assert isinstance(mf.list_monitors(), dict)
    with pytest.raises(NotFound):
        mf.get_monitor("no-such-monitor")
    assert isinstance(mf.list_events(limit=5), dict)
    hook = mf.create_webhook("http://127.0.0.1:9/hook")
    hooks = mf.list_webhooks()
    assert hook and hooks


def test_server_logs_the_doctor_summary_at_start_up(live) -> None:
    log = live.process.log_path.read_text()
    line = next(line for line in log.splitlines() if "doctor:" in line)
    assert "onnxruntime=onnxruntime (CPU build)" in line and "faiss=" in line


def test_connection_failure_is_typed_after_retries() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with (
        Client(dead, retry=RetryPolicy(retries=2, backoff_s=0.01)) as client,
        pytest.raises(ConnectionFailed),
    ):
        client.health()

"""The search settings end to end: a server on each backend with `auto` galleries, identify, restart."""

from __future__ import annotations

import cv2
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.search.test_backends import BACKENDS
from tests.server.conftest import encode_jpeg, enroll_t1, jpeg_file, t1_bgr, t1_faces  # noqa: F401 - fixtures


def _identify(client: TestClient, image: bytes) -> list[str | None]:
    r = client.post("/identify", data={"gallery": "t1", "top_k": "3"}, files={"image": jpeg_file(image)})
    assert r.status_code == 200, r.text
    faces = sorted(r.json()["faces"], key=lambda f: f["box"][0])
    return [f["match"]["name"] if f["match"] else None for f in faces]


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_gallery_identifies_and_survives_a_restart(
    backend, tmp_path, default_pack, t1_faces, t1_bgr  # noqa: F811 - the imported fixtures
):
    from app.settings import Settings

    settings = Settings(home=tmp_path, auth=False, search_backend=backend, default_index="auto",
                        milvus_uri=str(tmp_path / "milvus.db"), use_gpu_index=False)
    image = encode_jpeg(cv2.resize(t1_bgr, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA))
    expected = [f"person{i}" for i in range(6)]
    with TestClient(create_app(settings)) as client:
        enroll_t1(client, t1_faces)
        described = client.get("/galleries/t1").json()
        assert described["index"]["kind"] == "auto" and described["index"]["faces"] == 6
        assert described["index"]["faiss"] == ("IndexFlatIP" if backend == "faiss" else "Milvus AUTOINDEX")
        assert _identify(client, image) == expected
    if backend == "faiss":  # saved on shutdown with its change-log position
        assert (tmp_path / "indexes" / "gallery-1" / "meta.json").exists()
    with TestClient(create_app(settings)) as client:
        assert client.get("/galleries/t1").json()["index"]["faces"] == 6
        assert _identify(client, image) == expected
        r = client.delete("/galleries/t1/subjects/person3")
        assert r.status_code in (200, 204), r.text
        assert _identify(client, image)[3] is None

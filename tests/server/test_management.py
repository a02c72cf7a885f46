"""Galleries, subjects (pagination, rename, metadata), faces, OpenAPI, metrics, and `marginface enroll`."""

from __future__ import annotations

import numpy as np

from cli.main import main as marginface
from tests.server.conftest import encode_jpeg, jpeg_file


def test_subjects_crud_and_pagination(make_client, store_url):
    c = make_client(store_url)
    r = c.post("/galleries", json={"name": "crud", "index": "ivf"})
    assert r.status_code == 201 and r.json()["pack"]["name"] == "default" and r.json()["pack"]["version"]
    ids = [
        c.post("/galleries/crud/subjects", json={"name": f"n{i}", "metadata": {"i": i}}).json()["id"]
        for i in range(7)
    ]
    page = c.get("/galleries/crud/subjects", params={"limit": 3}).json()
    seen, pages = [s["id"] for s in page["subjects"]], 1
    assert page["total"] == 7
    while page["next_after"] is not None:
        page = c.get("/galleries/crud/subjects", params={"limit": 3, "after": page["next_after"]}).json()
        seen += [s["id"] for s in page["subjects"]]
        pages += 1
    assert seen == ids and pages == 3

    r = c.patch(f"/galleries/crud/subjects/{ids[2]}", json={"name": "renamed", "metadata": {"role": "guest"}})
    assert (
        r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["metadata"] == {"role": "guest"}
    )
    assert c.get("/galleries/crud/subjects/renamed").json()["id"] == ids[2]
    assert c.patch(f"/galleries/crud/subjects/{ids[3]}", json={"name": "renamed"}).status_code == 409
    assert c.delete(f"/galleries/crud/subjects/{ids[2]}").status_code == 200
    assert c.get(f"/galleries/crud/subjects/{ids[2]}").status_code == 404
    listed = c.get("/galleries").json()["galleries"]
    assert [(g["name"], g["subjects"], g["index"]["kind"]) for g in listed] == [("crud", 6, "ivf")]
    assert c.delete("/galleries/crud").status_code == 200
    assert c.get("/galleries").json()["galleries"] == []


def test_openapi_metrics_and_readiness(make_client, tmp_path, t1_faces):
    c = make_client(f"sqlite:///{tmp_path / 'm.db'}")
    spec = c.get("/openapi.json").json()
    for path in ("/verify", "/identify", "/detect", "/galleries", "/galleries/{gallery}/subjects"):
        assert path in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/identify"]["post"]["requestBody"]["content"]
    assert c.get("/docs").status_code == 200
    c.post("/galleries", json={"name": "m"})
    c.post("/galleries/m/enroll", data={"subject": "a"}, files={"image": jpeg_file(t1_faces[0]["crop"])})
    c.post("/identify", data={"gallery": "m"}, files={"image": jpeg_file(t1_faces[0]["crop"])})
    text = c.get("/metrics").text
    assert 'marginface_request_seconds_count{method="POST",route="/identify",status="200"} 1.0' in text
    assert 'marginface_gallery_faces 1.0' in text  # totals: no gallery names by default
    assert 'marginface_faces_embedded_total{pack="default"} 2.0' in text
    assert "marginface_embed_batch_size_bucket" in text
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["packs"][0]["embedding_size"] == 128


def test_gallery_on_an_unloaded_pack_answers_503(make_client, tmp_path, t1_faces):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = make_client(url)
    first.post("/galleries", json={"name": "g"})
    first.__exit__(None, None, None)
    second = make_client(url, packs=["missing-pack"])  # the gallery's pack is not loaded here
    r = second.post("/identify", data={"gallery": "g"}, files={"image": jpeg_file(t1_faces[0]["crop"])})
    assert r.status_code == 503 and r.json()["error"]["code"] == "pack_not_loaded"
    assert second.get("/readyz").status_code == 503
    assert second.get("/galleries/g").status_code == 200  # reads still work


def test_cli_enroll_directory(default_pack, tmp_path, monkeypatch, capsys, t1_faces, make_client):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MARGINFACE_DATABASE_URL", url)
    for i in range(3):
        (tmp_path / "people" / f"person{i}").mkdir(parents=True)
        (tmp_path / "people" / f"person{i}" / "1.jpg").write_bytes(t1_faces[i]["crop"])
    (tmp_path / "people" / "person0" / "blank.jpg").write_bytes(
        encode_jpeg(np.full((99, 99, 3), 9, np.uint8))
    )
    (tmp_path / "people" / "person1" / "broken.jpg").write_bytes(b"not a jpeg")
    assert marginface(["enroll", str(tmp_path / "people"), "--gallery", "cli"]) == 0
    out = capsys.readouterr().out
    assert (
        "3 subjects, 5 images: 3 enrolled, 2 rejected" in out
        and "no_face: 1" in out
        and "bad_image: 1" in out
    )

    c = make_client(url)
    r = c.post("/identify", data={"gallery": "cli"}, files={"image": jpeg_file(t1_faces[1]["crop"])})
    assert r.json()["faces"][0]["match"]["name"] == "person1"
    assert marginface(["enroll", str(tmp_path / "nowhere"), "--gallery", "cli"]) == 1

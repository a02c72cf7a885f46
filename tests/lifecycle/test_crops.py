"""Face crop store: crops kept with faces (lossless), served, deleted with them; keep_crops off; upgrade."""

from __future__ import annotations

import cv2
import numpy as np
from sqlalchemy import func, select, text

from app.crops.models import FaceCrop
from app.store.migrate import upgrade
from tests.server.conftest import enroll_t1, jpeg_file


def _crop_rows(client) -> int:
    with client.app.state.ctx.db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(FaceCrop)))


def _face_ids(client, gallery: str, subject: str) -> list[int]:
    return [f["id"] for f in client.get(f"/galleries/{gallery}/subjects/{subject}/faces").json()["faces"]]


def test_crops_kept_served_and_deleted(client, t1_faces):
    enroll_t1(client, t1_faces)
    ctx = client.app.state.ctx
    stored = {}
    for ids, _, vectors in ctx.repo.iter_embeddings(ctx.repo.get_gallery("t1").id):
        stored |= dict(zip(ids.tolist(), vectors, strict=True))
    assert len(stored) == 6 and _crop_rows(client) == 6
    pipeline = ctx.engines.get().pipeline
    for face_id, embedding in stored.items():
        r = client.get(f"/galleries/t1/faces/{face_id}/crop")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        crop = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape == (112, 112, 3)
        again = pipeline.embed_crops(crop[None])[0]
        # lossless: the stored crop gives back the stored embedding
        assert float(again @ embedding) / float(np.linalg.norm(again) * np.linalg.norm(embedding)) > 0.99999
    described = client.get("/galleries/t1").json()["crops"]
    assert described == {"keep": True, "stored": 6, "faces": 6, "migratable": True}

    one = _face_ids(client, "t1", "person0")[0]
    assert client.delete(f"/galleries/t1/faces/{one}").status_code == 200
    r = client.get(f"/galleries/t1/faces/{one}/crop")
    assert r.status_code == 404 and r.json()["error"]["code"] == "face_not_found"
    assert _crop_rows(client) == 5
    assert client.delete("/galleries/t1/subjects/person1").status_code == 200
    assert _crop_rows(client) == 4
    assert client.get("/galleries/nope/faces/1/crop").json()["error"]["code"] == "gallery_not_found"
    assert client.delete("/galleries/t1").status_code == 200
    assert _crop_rows(client) == 0


def test_keep_crops_off(client, t1_faces):
    assert client.post("/galleries", json={"name": "private", "keep_crops": False}).status_code == 201
    r = client.post(
        "/galleries/private/enroll", data={"subject": "a"}, files={"image": jpeg_file(t1_faces[2]["crop"])}
    )
    assert r.status_code == 201
    face_id = r.json()["results"][0]["face_id"]
    r = client.get(f"/galleries/private/faces/{face_id}/crop")
    assert r.status_code == 404 and r.json()["error"]["code"] == "crops_disabled"
    crops = client.get("/galleries/private").json()["crops"]
    assert crops["keep"] is False and crops["migratable"] is False and "re-enrolled" in crops["message"]
    assert _crop_rows(client) == 0


def test_upgrade_in_place_keeps_data(store_url):
    """A store at 0002 with a face upgrades to head: the face stays, galleries keep crops by default."""
    from app.store.db import make_engine

    engine = make_engine(store_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO galleries"
                " (id, name, pack_name, pack_version, embedding_size, index_kind, created_at)"
                " VALUES (1, 'old', 'default', '1.0.0', 4, 'flat', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subjects (id, gallery_id, name, metadata, created_at, updated_at)"
                " VALUES (1, 1, 's', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO faces (subject_id, gallery_id, embedding, pack_name, pack_version, created_at)"
                " VALUES (1, 1, :e, 'default', '1.0.0', CURRENT_TIMESTAMP)"
            ),
            {"e": np.ones(4, np.float32).tobytes()},
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM faces")) == 1
        assert conn.scalar(text("SELECT count(*) FROM subjects")) == 1
        assert bool(conn.scalar(text("SELECT keep_crops FROM galleries WHERE id = 1"))) is True
        assert conn.scalar(text("SELECT count(*) FROM face_crops")) == 0
    from app.crops.repository import CropRepository
    from app.crops.service import CropService
    from app.store.repository import Repository

    gallery = Repository(engine).get_gallery("old")
    status = CropService(CropRepository(engine)).status(gallery)
    assert status["migratable"] is False and status["stored"] == 0 and status["faces"] == 1
    engine.dispose()

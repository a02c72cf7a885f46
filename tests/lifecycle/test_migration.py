"""Gallery migration to another pack: under identify load (no 5xx, always right), resumable, refusals."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.gallery_migration import service as migration_service
from app.gallery_migration.service import GalleryMigrator, TargetPack
from cli.main import main as marginface
from models.pipeline import FacePipeline
from tests.lifecycle.packs import rotated_pack
from tests.server.conftest import jpeg_file

VARIANTS = 3  # enrolled photos per person (shifted crops of t1's faces)


@pytest.fixture(scope="module")
def new_pack(default_pack, tmp_path_factory) -> Path:
    return rotated_pack(default_pack, tmp_path_factory.mktemp("packs") / "sface-rotated")


def _enroll(client, t1_faces, gallery: str = "g") -> None:
    assert client.post("/galleries", json={"name": gallery}).status_code == 201
    for i, face in enumerate(t1_faces):
        files = [("image", jpeg_file(face["crop"], f"p{i}_{v}.jpg")) for v in range(VARIANTS)]
        r = client.post(f"/galleries/{gallery}/enroll", data={"subject": f"person{i}"}, files=files)
        assert r.status_code == 201 and r.json()["enrolled"] == VARIANTS, r.text


def _stored(ctx, gallery: str) -> dict[int, np.ndarray]:
    out = {}
    for ids, _, vectors in ctx.repo.iter_embeddings(ctx.repo.get_gallery(gallery).id):
        out |= dict(zip(ids.tolist(), vectors, strict=True))
    return out


def test_migrate_under_load(make_client, store_url, t1_faces, new_pack, monkeypatch):
    monkeypatch.setattr(migration_service, "CHUNK", 2)  # many small steps: the load overlaps them
    client = make_client(store_url, packs=["default", str(new_pack)])
    _enroll(client, t1_faces)
    results: list[tuple[int, int, str | None]] = []
    stop = threading.Event()

    def load(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            k = rng.randrange(len(t1_faces))
            r = client.post(
                "/identify", data={"gallery": "g"}, files={"image": jpeg_file(t1_faces[k]["crop"])}
            )
            match = r.json()["faces"][0]["match"] if r.status_code == 200 else None
            results.append((k, r.status_code, match and match["name"]))

    threads = [threading.Thread(target=load, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    _wait_for(results, 3)
    before = len(results)
    r = client.post("/galleries/g/migrate", json={"pack": "sface-rotated"})
    assert r.status_code == 202, r.text
    assert client.post("/galleries/g/migrate", json={"pack": "sface-rotated"}).status_code in (202, 409)
    seen_progress = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        migration = client.get("/galleries/g").json()["migration"]
        seen_progress.add((migration["state"], migration["done"]))
        if migration["state"] != "running":
            break
        time.sleep(0.05)
    during = len(results)
    _wait_for(results, during + 3)
    stop.set()
    for t in threads:
        t.join()
    assert migration["state"] == "switched", migration
    assert migration["done"] == migration["total"] == 6 * VARIANTS
    assert before > 0 and during > before and len(results) > during  # load before, during and after
    bad = [(k, status, name) for k, status, name in results if status != 200 or name != f"person{k}"]
    assert not bad, bad[:5]

    described = client.get("/galleries/g").json()
    assert described["pack"] == {"name": "sface-rotated", "version": "2.0.0"}
    ctx = client.app.state.ctx
    new = FacePipeline.from_pack(str(new_pack))
    stored = _stored(ctx, "g")
    for face_id, vector in stored.items():
        crop = client.get(f"/galleries/g/faces/{face_id}/crop").content
        from app.crops.service import decode_crop

        expected = new.embed_crops(decode_crop(crop)[None])[0]
        assert float(vector @ expected) > 0.9999  # every face now carries the new pack's embedding
    assert {f.pack_version for f in _faces(ctx, "g")} == {"2.0.0"}


def _wait_for(results: list, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(results) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def _faces(ctx, gallery: str):
    from sqlalchemy import select

    from app.store.models import FaceRecord

    with ctx.repo.session() as s:
        return list(
            s.scalars(select(FaceRecord).where(FaceRecord.gallery_id == ctx.repo.get_gallery(gallery).id))
        )


class Crash(RuntimeError):
    pass


def test_migration_resumes_after_a_crash(make_client, tmp_path, t1_faces, new_pack):
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    client = make_client(url)
    _enroll(client, t1_faces)
    ctx = client.app.state.ctx
    gallery = ctx.repo.get_gallery("g")
    old = _stored(ctx, "g")
    real = TargetPack.from_pipeline(FacePipeline.from_pack(str(new_pack)))
    calls: list[int] = []

    def crashing(crops: np.ndarray) -> np.ndarray:
        if len(calls) == 2:
            raise Crash("power cut")
        calls.append(len(crops))
        return real.embed(crops)

    target = TargetPack(real.name, real.version, real.embedding_size, real.input_size, crashing)
    with pytest.raises(Crash):
        GalleryMigrator(ctx.db, chunk=4).run(gallery, target)
    state = client.get("/galleries/g").json()
    assert state["migration"]["state"] == "failed" and "power cut" in state["migration"]["error"]
    assert state["migration"]["done"] == 8
    assert state["pack"]["name"] == "default" and _stored(ctx, "g").keys() == old.keys()
    assert all(np.array_equal(v, old[k]) for k, v in _stored(ctx, "g").items())  # untouched until the switch

    counted: list[int] = []

    def counting(crops: np.ndarray) -> np.ndarray:
        counted.append(len(crops))
        return real.embed(crops)

    resumed = TargetPack(real.name, real.version, real.embedding_size, real.input_size, counting)
    status = GalleryMigrator(ctx.db, chunk=4).run(ctx.repo.get_gallery("g"), resumed)
    assert status["state"] == "switched" and sum(counted) == 6 * VARIANTS - 8  # only what was left


def test_cli_migrate_and_refusals(make_client, tmp_path, t1_faces, new_pack, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    client = make_client(url)
    _enroll(client, t1_faces)
    assert client.post("/galleries", json={"name": "private", "keep_crops": False}).status_code == 201
    r = client.post(
        "/galleries/private/enroll", data={"subject": "a"}, files={"image": jpeg_file(t1_faces[0]["crop"])}
    )
    assert r.status_code == 201
    r = client.post("/galleries/private/migrate", json={"pack": "default"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "same_pack"
    assert (
        marginface(["galleries", "migrate", "private", "--pack", str(new_pack), "--database-url", url]) == 1
    )
    assert "crops_missing" in capsys.readouterr().err
    assert marginface(["galleries", "migrate", "g", "--pack", str(new_pack), "--database-url", url]) == 0
    assert "18 faces now on sface-rotated 2.0.0" in capsys.readouterr().out
    time.sleep(0.6)  # the server process replays `gallery_migrated` from the change log
    assert client.get("/galleries/g").json()["pack"]["name"] == "sface-rotated"
    r = client.post("/identify", data={"gallery": "g"}, files={"image": jpeg_file(t1_faces[2]["crop"])})
    assert r.status_code == 503 and r.json()["error"]["code"] == "pack_not_loaded"  # honest: not loaded here

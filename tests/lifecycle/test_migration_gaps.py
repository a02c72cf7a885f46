"""Gallery migration: the switch cannot mix packs in one answer, a restart resumes a migration by itself,
and negatives (issue 11) follow the gallery to the new pack."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.gallery_migration import router as migration_router
from app.gallery_migration import service as migration_service
from app.gallery_migration.consistency import PackSwitched, index_for_pack
from app.gallery_migration.repository import MigrationRepository
from app.gallery_migration.service import GalleryMigrator, TargetPack
from models.pipeline import FacePipeline
from tests.lifecycle.packs import rotated_pack
from tests.lifecycle.test_migration import VARIANTS, _enroll, _stored
from tests.server.conftest import jpeg_file

NEW = ("sface-rotated", "2.0.0")


@pytest.fixture(scope="module")
def new_pack(default_pack, tmp_path_factory) -> Path:
    return rotated_pack(default_pack, tmp_path_factory.mktemp("packs") / "sface-rotated")


@pytest.fixture(scope="module")
def target(new_pack) -> TargetPack:
    return TargetPack.from_pipeline(FacePipeline.from_pack(str(new_pack)))


def test_index_carries_its_pack_and_a_stale_one_is_never_searched(make_client, tmp_path, t1_faces, target):
    client = make_client(f"sqlite:///{tmp_path / 'race.db'}", sync_interval_s=3600)  # no replay meanwhile
    _enroll(client, t1_faces)
    ctx = client.app.state.ctx
    before = ctx.repo.get_gallery("g")  # what a request read just before the switch
    assert ctx.indexes.get(before).pack == ("default", "1.0.0")

    GalleryMigrator(ctx.db).run(before, target)  # another process's switch: this one has not replayed it
    after = ctx.repo.get_gallery("g")
    assert (after.pack_name, after.pack_version) == NEW
    assert ctx.indexes.get(before).pack == ("default", "1.0.0")  # still the old index here
    # a request that read the gallery before the switch searches the old index with old embeddings
    assert index_for_pack(ctx.galleries, before).pack == ("default", "1.0.0")
    # one that read it after never searches the old index: it is rebuilt with the new embeddings
    index = index_for_pack(ctx.galleries, after)
    assert index.pack == NEW and index.size == 6 * VARIANTS
    # and once the index is the new one, the old gallery row (old pack's probes) is refused, not searched
    with pytest.raises(PackSwitched) as raised:
        index_for_pack(ctx.galleries, before)
    assert (raised.value.gallery.pack_name, raised.value.gallery.pack_version) == NEW


def test_a_restarted_server_resumes_the_migration(
    make_client, tmp_path, t1_faces, target, new_pack, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    client = make_client(url)
    _enroll(client, t1_faces)
    ctx = client.app.state.ctx
    gallery = ctx.repo.get_gallery("g")
    migrator = GalleryMigrator(ctx.db, chunk=4)
    migrator.start(gallery, target)  # the process is killed after two chunks: state stays "running"
    for _ in range(2):
        chunk = migrator.repo.pending(gallery.id, 4)
        crops = np.stack([migrator._crop(c.data, target.input_size) for c in chunk])
        migrator.repo.save_shadows(
            gallery.id, target.version, [c.face_id for c in chunk], target.embed(crops)
        )
    assert client.get("/galleries/g").json()["migration"]["state"] == "running"

    monkeypatch.setattr(migration_service, "STALE_AFTER_S", 0.0)
    monkeypatch.setattr(migration_router, "RESUME_EVERY_S", 0.1)
    restarted = make_client(url, packs=["default", str(new_pack)])  # nobody posts the migration again
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        migration = restarted.get("/galleries/g").json()["migration"]
        if migration["state"] != "running":
            break
        time.sleep(0.1)
    assert migration["state"] == "switched" and migration["done"] == 6 * VARIANTS, migration
    assert restarted.get("/galleries/g").json()["pack"] == {"name": NEW[0], "version": NEW[1]}
    r = restarted.post("/identify", data={"gallery": "g"}, files={"image": jpeg_file(t1_faces[3]["crop"])})
    assert r.status_code == 200 and r.json()["faces"][0]["match"]["name"] == "person3"


def test_a_live_migration_is_not_taken_over(make_client, tmp_path, t1_faces, target):
    client = make_client(f"sqlite:///{tmp_path / 'live.db'}")
    _enroll(client, t1_faces)
    ctx = client.app.state.ctx
    gallery = ctx.repo.get_gallery("g")
    GalleryMigrator(ctx.db).start(gallery, target)
    repo = MigrationRepository(ctx.db)
    assert not repo.claim_stale(gallery.id, 60.0)  # advanced just now: its process is alive
    assert repo.claim_stale(gallery.id, 0.0)
    assert not repo.claim_stale(gallery.id, 60.0)  # the claim itself counts as progress


def test_negatives_follow_the_gallery_to_the_new_pack(make_client, tmp_path, t1_faces, new_pack):
    client = make_client(f"sqlite:///{tmp_path / 'neg.db'}", packs=["default", str(new_pack)])
    _enroll(client, t1_faces)
    ctx = client.app.state.ctx
    faces = client.get("/galleries/g/subjects/person1/faces").json()["faces"]
    r = client.post("/galleries/g/subjects/person0/negatives", json={"face_id": faces[0]["id"]})
    assert r.status_code == 201, r.text
    r = client.post(
        "/galleries/g/subjects/person0/negatives", files={"image": jpeg_file(t1_faces[2]["crop"])}
    )
    assert r.status_code == 201, r.text
    from_image = r.json()["negatives"][0]["id"]

    # an image's negative has no crop: the new pack could not re-embed it, so the migration says so
    r = client.post("/galleries/g/migrate", json={"pack": NEW[0], "wait": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "negatives_without_crop", r.text
    assert client.delete(f"/galleries/g/subjects/person0/negatives/{from_image}").status_code in (200, 204)

    r = client.post("/galleries/g/migrate", json={"pack": NEW[0], "wait": True})
    assert r.status_code == 200 and r.json()["migration"]["state"] == "switched", r.text
    from app.decisions.service import trust_for

    person0 = ctx.repo.get_subject_by_name(ctx.repo.get_gallery("g").id, "person0")
    stored = trust_for(ctx.galleries).store.negatives_of(ctx.repo.get_gallery("g").id, [person0.id])
    new_face = _stored(ctx, "g")[faces[0]["id"]]
    assert np.array_equal(stored[person0.id][0], new_face)  # the face's new-pack embedding, not the old

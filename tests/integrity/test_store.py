"""The store's integrity: ids never reused (migration 0002 upgrades an existing store in place), the
change log replayed in order and idempotently, and a worker left behind a prune reloads, not drifts."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import text

from app.search.factory import IndexParams
from app.search.registry import IndexRegistry
from app.store.db import make_engine
from app.store.migrate import upgrade
from app.store.repository import NewFace, Repository

DIM = 8
STAMP = "2026-01-01 00:00:00"


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _old_store_with_a_deleted_newest_face(engine) -> None:
    """A 0001 store as the issue left it: faces 1..3, the newest (3) deleted, the log saying so."""
    upgrade(engine, "0001")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO galleries (name, pack_name, pack_version, embedding_size, index_kind,"
                f" created_at) VALUES ('g', 'p', '1', {DIM}, 'flat', '{STAMP}')"
            )
        )
        for i in (1, 2, 3):
            c.execute(
                text(
                    "INSERT INTO subjects (gallery_id, name, metadata, created_at, updated_at)"
                    f" VALUES (1, 's{i}', '{{}}', '{STAMP}', '{STAMP}')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO faces (subject_id, gallery_id, embedding, pack_name, pack_version,"
                    " created_at) VALUES (:s, 1, :e, 'p', '1', :t)"
                ),
                {"s": i, "e": _vec(i).tobytes(), "t": STAMP},
            )
            c.execute(
                text(
                    "INSERT INTO changes (gallery_id, kind, subject_id, face_id, created_at)"
                    f" VALUES (1, 'face_add', {i}, {i}, '{STAMP}')"
                )
            )
        c.execute(text("DELETE FROM faces WHERE id = 3"))
        c.execute(
            text(
                "INSERT INTO changes (gallery_id, kind, subject_id, face_id, created_at)"
                f" VALUES (1, 'face_delete', 3, 3, '{STAMP}')"
            )
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'old.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_upgrade_in_place_keeps_data_and_never_reuses_ids(engine):
    _old_store_with_a_deleted_newest_face(engine)
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.get_gallery("g")
    assert gallery is not None and repo.gallery_counts(gallery.id) == (3, 2)
    ids = repo.add_faces(gallery, 1, [NewFace(_vec(9))])
    assert ids[0] > 3  # not the deleted face's id
    assert repo.delete_face(gallery.id, ids[0]) == 1
    assert repo.add_faces(gallery, 1, [NewFace(_vec(10))])[0] > ids[0]  # not even the newest deleted one
    subject = repo.create_subject(gallery.id, "fresh")
    assert subject.id > 3
    if engine.dialect.name == "sqlite":
        with engine.connect() as c:
            for table in ("galleries", "subjects", "faces", "changes"):
                sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar()
                assert "AUTOINCREMENT" in sql, table
            assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
    # foreign keys and their cascades survived the table rebuilds
    assert repo.delete_subject(gallery.id, 2)
    assert repo.gallery_counts(gallery.id) == (3, 2)


def _registry(repo: Repository) -> IndexRegistry:
    registry = IndexRegistry(repo, IndexParams(kind="flat", use_gpu=False))
    registry.load_all()
    return registry


def test_replay_is_in_order_and_a_pruned_log_makes_a_worker_reload(engine):
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.create_gallery("g", "p", "1", DIM, "flat")
    a, b = _registry(repo), _registry(repo)  # two workers
    s1 = repo.create_subject(gallery.id, "one")
    s2 = repo.create_subject(gallery.id, "two")
    first = repo.add_faces(gallery, s1.id, [NewFace(_vec(1))])
    doomed = repo.add_faces(gallery, s2.id, [NewFace(_vec(2))])
    repo.delete_face(gallery.id, doomed[0])
    third = repo.add_faces(gallery, s2.id, [NewFace(_vec(3))])  # the sequence: must not be dropped
    for registry in (a, b):
        registry.sync_once()
        registry.sync_once()  # twice: replay is idempotent
        assert registry.get(gallery).face_ids() == {first[0], third[0]}

    # b stops following; the log is pruned past its position; its next sync reloads from the store
    later = repo.add_faces(gallery, s1.id, [NewFace(_vec(4))])
    repo.delete_face(gallery.id, first[0])
    a.sync_once()
    position = repo.last_change_id()
    assert repo.prune_changes(timedelta(0)) > 0
    assert repo.pruned_through() == position and repo.last_change_id() == position
    repo.add_faces(gallery, s1.id, [NewFace(_vec(5))])
    with engine.connect() as c:  # ids keep growing after a prune emptied the log
        assert c.execute(text("SELECT min(id) FROM changes")).scalar() > position
    b.sync_once()
    assert b.reloads == 1
    stored = {int(i) for ids, _, _ in repo.iter_embeddings(gallery.id) for i in ids}
    assert later[0] in stored and first[0] not in stored
    assert b.get(gallery).face_ids() == stored and not b.out_of_step()
    a.sync_once()  # a was at the pruned position: nothing missed, no reload
    assert a.reloads == 0 and a.get(gallery).face_ids() == stored


def test_subject_delete_is_per_gallery_and_logged(engine):
    upgrade(engine)
    repo = Repository(engine)
    g1 = repo.create_gallery("g1", "p", "1", DIM, "flat")
    g2 = repo.create_gallery("g2", "p", "1", DIM, "flat")
    s1 = repo.create_subject(g1.id, "same")
    kept = repo.add_faces(g1, s1.id, [NewFace(_vec(1))])
    before = repo.last_change_id()
    assert not repo.delete_subject(g2.id, s1.id)  # another gallery's subject: untouched
    assert repo.gallery_counts(g1.id) == (1, 1) and repo.last_change_id() == before
    assert repo.delete_subject(g1.id, s1.id)
    kinds = [(c.kind, c.subject_id) for c in repo.changes_since(before)]
    assert kinds == [("subject_delete", s1.id)]
    assert repo.gallery_counts(g1.id) == (0, 0) and kept


def test_an_index_out_of_step_twice_in_a_row_is_rebuilt(engine):
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.create_gallery("g", "p", "1", DIM, "flat")
    subject = repo.create_subject(gallery.id, "one")
    ids = repo.add_faces(gallery, subject.id, [NewFace(_vec(1)), NewFace(_vec(2))])
    registry = _registry(repo)
    registry.get(gallery).remove([ids[0]])  # drift that no change-log entry explains
    assert registry.out_of_step() and registry.heal() == []  # suspected once: maybe a write in flight
    assert registry.heal() == ["g"]
    assert registry.get(gallery).face_ids() == set(ids) and not registry.out_of_step()

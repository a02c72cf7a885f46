"""/identify's plain-SQL reads (issue 17) return exactly what the ORM reads return, on SQLite and on a real
PostgreSQL: random galleries, subjects (some deleted), trust rows and negatives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from app.calibration.store import TrustStore
from app.store.db import make_engine
from app.store.errors import StoreUnavailable
from app.store.migrate import upgrade
from app.store.repository import Repository
from tests.server.servers import free_port


def _store(url: str) -> tuple[Repository, TrustStore]:
    engine = make_engine(url)
    upgrade(engine)
    repo = Repository(engine)
    return repo, TrustStore(repo)


def _orm_rows(repo: Repository, trust: TrustStore, gallery_id: int, ids: list[int]):
    row = trust.get(gallery_id)
    return (
        repo.subject_names(ids),
        None if row is None else (row.calibration, row.policy),
        trust.negatives_of(gallery_id, ids),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_identify_rows_match_the_orm_reads(store_url: str, seed: int) -> None:
    rng = random.Random(seed)
    repo, trust = _store(store_url)
    galleries = [repo.create_gallery(f"g{i}", "default", "1.0.0", 8, "flat") for i in range(3)]
    subjects = {g.id: [repo.create_subject(g.id, f"s{j} ‘{rng.random():.3f}’").id for j in range(12)]
                for g in galleries}
    for g in galleries[:2]:  # the third gallery keeps no trust row
        if rng.random() < 0.7:
            trust.set_calibration(g.id, {"threshold": rng.random(), "growth": {"k": [1, 2.5, None]},
                                         "pack": {"name": "default", "version": "1.0.0"}, "note": "é"})
        trust.set_policy(g.id, {"identify": {"min_quality": rng.random()}, "ambiguity_margin": 0.02})
    for g in galleries:
        for sid in rng.sample(subjects[g.id], 5):
            for _ in range(rng.randint(1, 3)):
                trust.add_negative(g.id, sid, np.random.default_rng(sid).normal(size=8).astype(np.float32),
                                   "test", None)
    for g in galleries:
        for sid in rng.sample(subjects[g.id], 3):
            repo.delete_subject(g.id, sid)
    every = [sid for ids in subjects.values() for sid in ids]
    for _ in range(20):
        g = rng.choice(galleries)
        ids = sorted(set(rng.sample(every, rng.randint(0, 10)) + [max(every) + rng.randint(1, 5)]))
        hot = trust.identify_rows(g.id, ids)
        names, row, negatives = _orm_rows(repo, trust, g.id, ids)
        assert hot.names == names
        assert (None if hot.trust is None else (hot.trust.calibration, hot.trust.policy)) == row
        assert sorted(hot.negatives) == sorted(negatives)
        for sid, vectors in negatives.items():
            np.testing.assert_array_equal(hot.negatives[sid], vectors)
    assert trust.identify_rows(galleries[0].id, []).names == {}


def test_identify_rows_on_an_unreachable_store_is_store_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    trust = TrustStore(Repository(make_engine(url)))
    with pytest.raises(StoreUnavailable):
        trust.identify_rows(1, [1, 2])


def test_get_gallery_reads_the_same_row_as_the_orm(store_url: str) -> None:
    from sqlalchemy import select

    from app.store.models import Gallery

    repo, _ = _store(store_url)
    for i, keep in enumerate((True, False)):
        repo.create_gallery(f"g{i} é", "default", f"1.{i}.0", 128 * (i + 1), "ivf_pqfs", keep_crops=keep)
    with repo.session() as s:
        expected = {g.name: g for g in s.scalars(select(Gallery))}
    columns = [c.key for c in Gallery.__table__.columns]
    for name, orm in expected.items():
        got = repo.get_gallery(name)
        assert [getattr(got, c) for c in columns] == [getattr(orm, c) for c in columns]
    assert repo.get_gallery("absent") is None


def test_missing_sqlite_file_is_an_outage_not_a_new_store(tmp_path) -> None:
    from app.store.errors import StoreUnavailable
    from app.store.hot_reads import HotReads

    path = tmp_path / "gone.db"
    reads = HotReads(make_engine(f"sqlite:///{path}"))
    with pytest.raises(StoreUnavailable):
        with reads.connection() as conn:
            reads.rows(conn, "SELECT id FROM subjects WHERE id = ?", (1,))
    assert not path.exists()

"""The event store on SQLite and PostgreSQL: deliveries made with the event, claims raced by threads,
retention, clusters of unknowns."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import update

from app.events.store import EventFilter, EventStore, NewEvent
from app.events.tables import Event
from app.store.db import make_engine
from app.store.migrate import upgrade
from app.store.models import utcnow
from tests.server.conftest import store_url  # noqa: F401 - the parametrised store fixture


@pytest.fixture
def events(store_url: str) -> EventStore:  # noqa: F811
    engine = make_engine(store_url)
    upgrade(engine)
    yield EventStore(engine)
    engine.dispose()


def _new(kind: str = "recognized", embedding=None, monitor: str = "door") -> NewEvent:
    now = utcnow()
    return NewEvent(monitor, "g", kind, 1 if kind == "recognized" else None, "alice" if kind == "recognized"
                    else None, 0.7 if kind == "recognized" else None, now, now, {}, b"jpeg", embedding)


def test_deliveries_are_created_with_the_event_and_claimed_once(events: EventStore):
    hook_all = events.add_webhook("http://a/x", "s" * 16, None)
    events.add_webhook("http://b/x", "s" * 16, "door")
    events.add_webhook("http://c/x", "s" * 16, "other-monitor")
    for _ in range(20):
        events.add(_new(), None)
    assert len(events.deliveries("pending", None, 1000)) == 40  # two matching webhooks per event
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        for _ in range(4):
            got = events.claim_due(limit=32, hold_s=60)
            with lock:
                claimed.extend(d.id for d, _, _ in got)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40  # each claimed exactly once
    assert events.claim_due(limit=32, hold_s=60) == []  # held: not due again before the hold ends
    first = events.deliveries("pending", hook_all.id, 1)[0][0]
    events.finish(first.id, False, "HTTP 500", None)
    assert [d.id for d, _ in events.deliveries("dead", None, 10)] == [first.id]
    assert events.retry(first.id) and events.claim_due(10, 60)[0][0].id == first.id


def test_retention_by_count_and_age_takes_deliveries_along(events: EventStore):
    events.add_webhook("http://a/x", "s" * 16, None)
    added = [events.add(_new(), None) for _ in range(10)]
    assert events.prune(timedelta(days=30), keep=4) == 6
    left = events.list(EventFilter(limit=100))
    assert [e.id for e in left] == sorted((e.id for e in added[-4:]), reverse=True)
    assert len(events.deliveries(None, None, 100)) == 4
    old = added[-4:][:2]
    with events._sessions() as s, s.begin():
        s.execute(update(Event).where(Event.id.in_([e.id for e in old]))
                  .values(created_at=utcnow() - timedelta(days=3)))
    assert events.prune(timedelta(days=2), keep=100) == 2
    assert len(events.list(EventFilter(limit=100))) == 2


def test_unknowns_cluster_by_similarity(events: EventStore):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=128), rng.normal(size=128)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)

    def near(v):
        w = v + rng.normal(scale=0.03, size=v.shape)
        return (w / np.linalg.norm(w)).astype(np.float32)

    ids = [events.add(_new("unknown", near(v)), 0.5).cluster_id for v in (a, b, a, a, b)]
    assert ids[0] == ids[2] == ids[3] and ids[1] == ids[4] and ids[0] != ids[1]
    clusters = {c.id: c.count for c in events.clusters("g")}
    assert clusters == {ids[0]: 3, ids[1]: 2}
    assert events.add(_new("recognized"), 0.5).cluster_id is None
    assert [e.cluster_id for e in events.list(EventFilter(cluster_id=ids[1]))] == [ids[1], ids[1]]

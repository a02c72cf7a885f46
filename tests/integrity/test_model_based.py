"""Model-based test against real server processes: concurrent random walks, then the server must agree.

Configurations: SQLite with 1 worker (read-your-writes checked after every write), SQLite with 4 workers,
PostgreSQL with 2 server processes. Between batches a server is sometimes restarted (gracefully or kill -9).
``MARGINFACE_SOAK=N`` runs N times as many batches.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zlib
from pathlib import Path

import pytest

from tests.integrity.conftest import SOAK
from tests.integrity.model import Driver
from tests.integrity.servers import Server

CLIENTS = 4
STEPS = 10  # per client and batch
BATCHES = 5
RESTART_EVERY = 2  # batches
SEED = int(os.environ.get("MARGINFACE_INTEGRITY_SEED", "0"))  # vary to explore other walks

# name → (store, server processes, workers per process[, server environment])
CONFIGS: dict[str, tuple] = {
    "sqlite-1-worker": ("sqlite", 1, 1),
    "sqlite-4-workers": ("sqlite", 1, 4),
    "postgresql-2-processes": ("postgresql", 2, 1),
}
if importlib.util.find_spec("milvus_lite") is not None:  # issue 16: Milvus Lite (one process per file)
    CONFIGS["sqlite-1-worker-milvus"] = (
        "sqlite", 1, 1, {"MARGINFACE_SEARCH_BACKEND": "milvus", "MARGINFACE_MILVUS_URI": "{tmp}/milvus.db"}
    )


def _record(name: str, driver: Driver) -> None:
    """Counts for bench/RESULTS.md (bench/bench_integrity.py reads them), when asked to."""
    target = os.environ.get("MARGINFACE_INTEGRITY_COUNTS")
    if not target:
        return
    ops, statuses = driver.totals()
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = {
        "operations": sum(ops.values()),
        "by_operation": dict(ops),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "checks": driver.checks,
        "restarts": driver.restarts,
        "server_5xx": sum(v for k, v in statuses.items() if k >= 500),
    }
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_random_walk_agrees_with_the_model(config, photos, tmp_path, request):
    kind, processes, workers, *rest = CONFIGS[config]
    env = {k: v.format(tmp=tmp_path) for k, v in (rest[0] if rest else {}).items()}
    url = f"sqlite:///{tmp_path / 'store.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    servers = [Server(url, tmp_path / f"server{i}.log", workers=workers, **env) for i in range(processes)]
    try:
        for server in servers:
            server.start()
        driver = Driver(
            servers,
            photos,
            CLIENTS,
            seed=zlib.crc32(config.encode()) % 10_000 + SEED,
            strict=processes * workers == 1,
        )
        driver.setup()
        batches = BATCHES * max(1, SOAK)
        for number in range(1, batches + 1):
            driver.batch(STEPS)
            driver.check()
            if number % RESTART_EVERY == 0 and number < batches:
                driver.restart()
                driver.check()
        ops, statuses = driver.totals()
        _record(config, driver)
        assert sum(ops.values()) >= CLIENTS * STEPS * batches * 0.9
        assert not [code for code in statuses if code >= 500]
        assert ops["enroll_new"] and ops["delete_face"] and ops["identify"]
    except BaseException:
        for server in servers:
            print(f"--- {server.log_path.name}\n{server.tail(3000)}")
        raise
    finally:
        for server in servers:
            server.stop()

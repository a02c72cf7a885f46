"""Model-based integrity runs against real servers: operations driven, answers by status, 5xx count.

Runs ``tests/integrity/test_model_based.py`` (4 concurrent clients per configuration: SQLite with 1 and 4
workers, PostgreSQL with 2 server processes; restarts and kill -9 between batches) and reports what the
driver counted. ``--quick``: the CI size; otherwise ``MARGINFACE_SOAK=3`` (three times the batches).

    nice -n 10 .venv/bin/python -m bench.bench_integrity [--quick] [--write]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import main_for

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/integrity/test_model_based.py"


def run(quick: bool) -> list[dict]:
    soak = "0" if quick else "3"
    with tempfile.TemporaryDirectory() as folder:
        counts = Path(folder) / "counts.json"
        env = os.environ | {"MARGINFACE_INTEGRITY_COUNTS": str(counts), "MARGINFACE_SOAK": soak}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        minutes = (time.perf_counter() - started) / 60
        data = json.loads(counts.read_text()) if counts.exists() else {}
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    rows = []
    for config, c in data.items():
        statuses = ", ".join(f"{code}×{n}" for code, n in c["statuses"].items())
        rows.append(
            [
                config,
                c["operations"],
                sum(c["statuses"].values()),
                statuses,
                c["checks"],
                c["restarts"],
                c["server_5xx"],
            ]
        )
    return [
        {
            "title": "Integrity: model-based random walks against real servers",
            "columns": [
                "configuration",
                "operations",
                "requests",
                "statuses",
                "model checks",
                "restarts",
                "5xx",
            ],
            "rows": rows,
            "notes": [
                f"pytest: {summary} ({minutes:.1f} min, MARGINFACE_SOAK={soak}); a configuration missing "
                "from the table failed before recording its counts.",
                "Operations: enroll (new/existing subject, some photos without a face), delete face/subject/"
                "gallery, rename, identify, verify with subject, from 4 concurrent clients; requests include "
                "the batch checks (every live face found as its own subject, no deleted face or subject "
                "returned, subject lists and face counts equal to the model; /readyz on every worker).",
                "CPU shared with other work (2 cores); the counts, not the time, are the result.",
            ],
        }
    ]


if __name__ == "__main__":
    main_for(run, __doc__)

"""Schemathesis over a live server's /openapi.json (used by tests/hostile/test_schema_fuzz.py and by
bench/bench_hostile.py for the counts in bench/RESULTS.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXCLUDED_PATHS = ("/events/stream",)  # server-sent events: one response that never ends
# Revoking keys would revoke the fuzzer's own admin key once it has created another admin (all 401 after).
EXCLUDED_OPERATIONS = ("DELETE /keys/{key_id}",)


def schemathesis_command() -> list[str] | None:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("schemathesis")
    return [found] if found else None


def run_schemathesis(
    base_url: str,
    token: str,
    report_dir: Path,
    *,
    max_examples: int = 10,
    seed: int = 1,
    timeout: float = 420.0,
) -> dict:
    """Run the CLI; return ``{"returncode", "requests", "statuses", "server_errors", "output"}``.

    ``requests`` and ``statuses`` are counted from the NDJSON event log (every interaction recorded).
    """
    command = schemathesis_command()
    if command is None:
        raise RuntimeError("schemathesis is not installed (dev extra)")
    report_dir.mkdir(parents=True, exist_ok=True)
    ndjson = report_dir / "events.ndjson"
    args = [
        *command, "run", f"{base_url}/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", str(max_examples),
        "--seed", str(seed),
        "--phases", "examples,coverage,fuzzing",
        # One worker: with two threads, hypothesis's ast.parse of filter lambdas races on CPython 3.11's
        # shared AST recursion counter and aborts the run with a SystemError (python/cpython#106905).
        "--workers", "1",
        "--request-timeout", "60",
        "--report", "ndjson", "--report-ndjson-path", str(ndjson),
        "--no-color",
    ]
    for path in EXCLUDED_PATHS:
        args += ["--exclude-path", path]
    for operation in EXCLUDED_OPERATIONS:
        args += ["--exclude-name", operation]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    statuses = _statuses(ndjson)
    return {
        "returncode": done.returncode,
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "server_errors": sum(n for code, n in statuses.items() if code >= 500),
        "output": done.stdout[-6000:] + done.stderr[-2000:],
    }


def _statuses(ndjson: Path) -> Counter:
    """HTTP statuses of every recorded interaction (robust to the event layout: any ``status_code``)."""
    counts: Counter = Counter()
    if not ndjson.is_file():
        return counts

    def walk(node: object) -> None:
        if isinstance(node, dict):
            response = node.get("response")
            if isinstance(response, dict) and isinstance(response.get("status_code"), int):
                counts[response["status_code"]] += 1
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for line in ndjson.read_text().splitlines():
        if line.strip():
            walk(json.loads(line))
    return counts

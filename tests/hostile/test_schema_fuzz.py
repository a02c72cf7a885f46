"""Schemathesis over /openapi.json against a live server with an admin key: no 5xx, and every response
matches its declared status, content type and schema (bounded: ~1-2 minutes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.console.live import LiveServer, make_keys
from tests.hostile.fuzz import run_schemathesis, schemathesis_command


@pytest.mark.timeout(600)
def test_schemathesis_no_server_error_no_schema_mismatch(default_pack: Path, tmp_path: Path) -> None:
    if schemathesis_command() is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    url = f"sqlite:///{tmp_path / 'marginface.db'}"
    tokens = make_keys(url)
    server = LiveServer(url, tmp_path / "server.log").start()
    try:
        examples = int(os.environ.get("MARGINFACE_FUZZ_EXAMPLES", "10"))
        result = run_schemathesis(server.url, tokens["admin"], tmp_path / "report", max_examples=examples)
    finally:
        server.stop()
    print(f"schemathesis: {result['requests']} requests, statuses {dict(sorted(result['statuses'].items()))}")
    assert result["requests"] > 500, result["output"]
    assert result["server_errors"] == 0, result["output"]
    assert result["returncode"] == 0, result["output"]

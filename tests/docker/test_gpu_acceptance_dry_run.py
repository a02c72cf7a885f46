"""``bench/gpu_acceptance.py --dry-run``: every step of the GPU acceptance run that needs no device, on the
CPU, with the refusals that stand in for the device (a few minutes on a shared 2-core machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_gpu_acceptance_dry_run_passes_every_step(default_pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu_acceptance.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_acceptance", "--dry-run", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    steps = results["steps"]
    assert results["dry_run"] is True and results["ok"] is True
    assert list(steps) == ["install", "providers", "export", "faiss", "embedding", "trainer"]
    assert all(step["status"] == "ok" for step in steps.values()), steps
    # the GPU side refused loudly instead of falling back to the CPU
    assert any("CUDAExecutionProvider was requested" in c for c in steps["providers"]["checks"])
    assert any("cannot build a TensorRT engine" in c for c in steps["export"]["checks"])
    assert any("has no TensorRT engine" in c for c in steps["export"]["checks"])
    # real faces, real parity numbers, both sides of each speed measured
    assert steps["providers"]["numbers"]["cpu stand-in min cosine (11 faces)"] >= 0.999
    assert steps["export"]["numbers"]["engine vs CPU min cosine"] >= 0.999
    assert steps["faiss"]["numbers"]["numpy stand-in top-1 agreement"] == 1.0
    assert all(" / " in v for k, v in steps["embedding"]["numbers"].items() if "faces/s" in k)
    assert "| providers | ok |" in done.stdout  # the markdown table printed for the log

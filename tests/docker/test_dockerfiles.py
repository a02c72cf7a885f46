"""The Dockerfiles' runtime contract, read from the files themselves (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docker import dockerfile_parse as dp

DOCKER = Path(__file__).resolve().parents[2] / "docker"
FILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.gpu"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_image_runs_the_server_as_non_root_with_data_volume_and_healthcheck(path: Path) -> None:
    stage = dp.final_stage(path)
    assert dp.command(path) == ["marginface", "serve", "--host", "0.0.0.0", "--port", "8000"]
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any(k == "VOLUME" and "/data" in a for k, a in stage)
    env = dp.env(path)
    assert env["MARGINFACE_HOME"] == "/data" and env["MARGINFACE_PACKS_DIR"] == "/packs"
    options, check = dp.healthcheck(path)
    assert check[0].startswith("python") and "curl" not in " ".join(check)
    assert "/healthz" in check[-1] and "urllib" in check[-1]
    assert {"interval", "timeout", "retries"} <= set(options)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_default_pack_is_built_into_the_image(path: Path) -> None:
    runs = [args for keyword, args in dp.instructions(path) if keyword == "RUN"]
    installs = [r for r in runs if "marginface models install default" in r]
    assert installs and "MARGINFACE_PACKS_DIR=/packs" in installs[0]


def test_cpu_image_is_slim_python_and_gpu_image_is_tensorrt_with_gpu_wheels() -> None:
    cpu_from = [a for k, a in dp.instructions(FILES[0]) if k == "FROM"]
    assert all(a.startswith("python:3.11-slim") for a in cpu_from)
    gpu = dp.instructions(FILES[1])
    assert [a for k, a in gpu if k == "FROM"][0].startswith("nvcr.io/nvidia/tensorrt:")
    gpu_runs = " ".join(a for k, a in gpu if k == "RUN")
    assert "onnxruntime-gpu" in gpu_runs and "faiss-gpu" in gpu_runs
    assert "tensorrt" in dp.env(FILES[1])["MARGINFACE_PROVIDERS"]

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


def test_both_images_are_debian_bookworm_by_build_arg_and_gpu_needs_no_nvidia_registry() -> None:
    for path in FILES:
        items = dp.instructions(path)
        assert items[0] == ("ARG", "BASE=debian:bookworm-slim")
        assert {a for k, a in items if k == "FROM"} == {"${BASE} AS build", "${BASE}"}
    gpu = " ".join(a for _, a in dp.instructions(FILES[1]))
    assert "nvcr.io" not in gpu and "nvidia/" not in gpu.split("LD_LIBRARY_PATH")[0]
    assert "optional-dependencies" in gpu and "EXTRAS=gpu,tensorrt" in gpu
    assert "CPU builds installed" in gpu  # the build refuses onnxruntime / faiss-cpu beside the GPU builds
    assert "tensorrt" in dp.env(FILES[1])["MARGINFACE_PROVIDERS"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_wheels_and_ca_bundle_never_enter_a_layer(path: Path) -> None:
    runs = [a for k, a in dp.instructions(path) if k == "RUN"]
    copies = [a for k, a in dp.instructions(path) if k in ("COPY", "ADD")]
    assert not any("wheelhouse" in c or "cert" in c for c in copies)
    assert any("--mount=type=bind,source=docker/wheelhouse/" in r for r in runs)
    assert any("--mount=type=secret,id=pip_cert,required=false" in r for r in runs)


def test_gpu_extras_never_pull_the_cpu_builds() -> None:
    import tomllib

    extras = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {
        r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip()
        for r in extras["gpu"] + extras["tensorrt"]
    }
    assert {"onnxruntime-gpu", "faiss-gpu-cu12", "tensorrt-cu12"} <= names
    assert not names & {"onnxruntime", "faiss-cpu"}
    assert set(extras["cpu"]) and all(r.startswith(("onnxruntime", "faiss-cpu")) for r in extras["cpu"])

"""``marginface doctor`` on this machine's real runtime (CPU builds, no GPU): what it finds, the failures it
explains with a fix, ``--json``; and the same summary in the server's start-up log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _doctor(*args: str, home: Path, **env: str) -> tuple[int, dict]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("MARGINFACE_")}
    child |= {"MARGINFACE_HOME": str(home), **env}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", "--json", *args],
        cwd=REPO,
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def _by_what(report: dict) -> dict[str, dict]:
    return {f["what"]: f for f in report["findings"]}


def test_missing_pack_fails_with_the_install_command(tmp_path: Path) -> None:
    code, report = _doctor("--no-store", home=tmp_path)
    found = _by_what(report)
    assert code == 1 and report["ok"] is False
    assert found["pack default"]["status"] == "fail"
    assert found["pack default"]["fix"] == "marginface models install default"
    assert found["onnxruntime"]["status"] == "ok" and "CPUExecutionProvider" in found["onnxruntime"]["detail"]
    # no GPU expected on a CPU build: the GPU libraries are reported, not failed
    assert found["nvidia driver"]["status"] == "skip" and found["tensorrt"]["status"] in ("skip", "ok")


def test_asking_for_a_gpu_explains_the_cpu_build_and_how_to_fix_it(tmp_path: Path) -> None:
    code, report = _doctor("--no-store", "--quick", home=tmp_path, MARGINFACE_PROVIDERS='["cuda", "cpu"]')
    found = _by_what(report)
    assert code == 1
    missing = found["gpu providers"]
    assert missing["status"] == "fail" and "would run on the CPU" in missing["why"]
    assert "pip uninstall -y onnxruntime" in missing["fix"] and "marginface[gpu]" in missing["fix"]
    assert found["nvidia driver"]["status"] == "fail" and "--gpus all" in found["nvidia driver"]["fix"]
    assert found["cudnn"]["status"] == "fail" and "libcudnn.so.9" in found["cudnn"]["detail"]


def test_an_invalid_setting_is_reported_not_a_crash(tmp_path: Path) -> None:
    code, report = _doctor("--no-store", "--quick", home=tmp_path, MARGINFACE_MAX_FACES="many")
    found = _by_what(report)
    assert code == 1 and found["settings"]["status"] == "fail"
    assert "MARGINFACE_MAX_FACES" in found["settings"]["detail"] and found["onnxruntime"]["status"] == "ok"


def test_installed_pack_verifies_and_store_is_reported(default_pack: Path, tmp_path: Path) -> None:
    code, report = _doctor(
        home=default_pack.parent.parent, MARGINFACE_DATABASE_URL=f"sqlite:///{tmp_path}/x.db"
    )
    found = _by_what(report)
    assert found["pack default"]["status"] == "ok" and "hashes match" in found["pack default"]["detail"]
    assert found["store"]["status"] == "ok" and "x.db" in found["store"]["detail"]
    assert code == 0, [f for f in report["findings"] if f["status"] == "fail"]


@pytest.mark.parametrize("flag", ["--json", None])
def test_text_and_json_agree_on_failures(tmp_path: Path, flag: str | None) -> None:
    child = {k: v for k, v in os.environ.items() if not k.startswith("MARGINFACE_")} | {
        "MARGINFACE_HOME": str(tmp_path)
    }
    args = [sys.executable, "-m", "cli.main", "doctor", "--no-store", "--quick"] + ([flag] if flag else [])
    done = subprocess.run(args, cwd=REPO, env=child, capture_output=True, text=True, timeout=120)
    if flag:
        assert json.loads(done.stdout)["ok"] is False
    else:
        assert (
            "[FAIL] pack default" in done.stdout and "fix: marginface models install default" in done.stdout
        )

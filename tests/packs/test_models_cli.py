"""``marginface models ...`` through cli.main.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.packs.tiny_models import tiny_pack


@pytest.fixture
def packs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "packs"
    monkeypatch.setenv("MARGINFACE_PACKS_DIR", str(root))
    return root


def test_list_info_verify_default(default_pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "sface_2021dec_float32.onnx" in out and "Apache-2.0" in out

    assert main(["models", "info", "default"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["manifest"]["name"] == "default"
    assert info["disk_size_bytes"] > 30_000_000
    assert info["manifest"]["thresholds"]["default"]["value"] == pytest.approx(0.363)

    assert main(["models", "verify", "default"]) == 0
    out = capsys.readouterr().out
    assert "hashes OK" in out and out.strip().endswith(f"({default_pack.resolve()})")


def test_install_verify_remove_and_failures(packs_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["models", "list"]) == 0
    assert "marginface models install default" in capsys.readouterr().out

    source = tiny_pack(tmp_path / "src", name="tiny")
    assert main(["models", "install", str(source)]) == 0
    assert "installed tiny" in capsys.readouterr().out
    assert main(["models", "verify", "tiny"]) == 0
    assert "OK tiny" in capsys.readouterr().out

    # a model that no longer runs (same bytes would not be: re-hash it so only the run fails)
    rec = packs_root / "tiny" / "rec.onnx"
    rec.write_bytes(b"not an onnx model")
    manifest = json.loads((packs_root / "tiny" / "pack.json").read_text())
    from models.packs.store import sha256_file

    manifest["models"][1]["sha256"] = sha256_file(rec)
    (packs_root / "tiny" / "pack.json").write_text(json.dumps(manifest))
    assert main(["models", "verify", "tiny"]) == 1
    assert "error [model_failed]" in capsys.readouterr().err

    (packs_root / "tiny" / "det.onnx").write_bytes(b"tampered")
    assert main(["models", "verify", "tiny"]) == 1
    assert "error [hash_mismatch]" in capsys.readouterr().err

    (packs_root / "stray").mkdir()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "stray" in out and "not a usable pack" in out

    assert main(["models", "remove", "tiny"]) == 0
    assert main(["models", "info", "tiny"]) == 1
    assert "error [pack_not_found]" in capsys.readouterr().err


def test_install_insightface_messages(packs_root: Path, capsys) -> None:
    assert main(["models", "install", "insightface:buffalo_l"]) == 1
    assert "marginface: error [license_not_accepted]" in capsys.readouterr().err

"""Finding, verifying, installing (atomically) and removing packs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from models.errors import PackError
from models.packs import store
from models.packs.install import install_pack
from models.packs.store import list_packs, remove_pack, resolve_pack, staged_pack
from tests.packs.tiny_models import tiny_pack


@pytest.fixture
def packs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty packs folder for this test only."""
    root = tmp_path / "packs"
    monkeypatch.setenv("MARGINFACE_PACKS_DIR", str(root))
    return root


def rewrite_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_dirs_follow_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINFACE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MARGINFACE_PACKS_DIR", raising=False)
    assert store.home_dir() == tmp_path / "home"
    assert store.packs_dir() == tmp_path / "home" / "packs"
    monkeypatch.setenv("MARGINFACE_PACKS_DIR", str(tmp_path / "elsewhere"))
    assert store.packs_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("MARGINFACE_HOME")
    assert store.home_dir() == Path.home() / ".marginface"


def test_missing_default_pack_says_how_to_install(packs_root: Path) -> None:
    with pytest.raises(PackError) as caught:
        resolve_pack("default")
    assert caught.value.code == "pack_not_found"
    assert "marginface models install default" in str(caught.value)
    with pytest.raises(PackError, match="not found") as other:
        resolve_pack("nope")
    assert other.value.code == "pack_not_found"


def test_resolves_by_name_and_path_and_lists(packs_root: Path, tmp_path: Path) -> None:
    source = tiny_pack(tmp_path / "src", name="tiny")
    installed = install_pack(str(source))
    assert installed == packs_root / "tiny"
    by_name, manifest = resolve_pack("tiny")
    by_path, _ = resolve_pack(installed)
    assert by_name == by_path == installed.resolve()
    assert manifest.model("recogniser").embedding_size == 16
    assert [m.name for _, m in list_packs()] == ["tiny"]


def test_hash_mismatch_is_refused_even_after_a_cached_check(packs_root: Path, tmp_path: Path) -> None:
    folder = tiny_pack(tmp_path / "pack")
    resolve_pack(folder)  # verified and cached
    rewrite_byte(folder / "rec.onnx")
    with pytest.raises(PackError) as caught:
        resolve_pack(folder)
    assert caught.value.code == "hash_mismatch"
    assert "rec.onnx" in str(caught.value)
    resolve_pack(folder, verify=False)  # the manifest itself is still readable


def test_missing_file(tmp_path: Path) -> None:
    folder = tiny_pack(tmp_path / "pack")
    (folder / "det.onnx").unlink()
    with pytest.raises(PackError) as caught:
        resolve_pack(folder)
    assert caught.value.code == "missing_file"
    assert "det.onnx" in str(caught.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: "{ not json",
        lambda m: json.dumps({k: v for k, v in m.items() if k != "models"}),
        lambda m: json.dumps({**m, "models": [{**m["models"][0], "sha256": "xyz"}]}),
        lambda m: json.dumps(
            {**m, "models": [{**m["models"][0], "file": "../../etc/passwd"}, m["models"][1]]}
        ),
    ],
    ids=["not-json", "no-models", "bad-sha256", "path-escape"],
)
def test_bad_manifest(tmp_path: Path, damage) -> None:
    folder = tiny_pack(tmp_path / "pack")
    manifest = json.loads((folder / "pack.json").read_text())
    (folder / "pack.json").write_text(damage(manifest))
    with pytest.raises(PackError) as caught:
        resolve_pack(folder)
    assert caught.value.code == "bad_manifest"


def test_install_from_folder_is_idempotent_and_force_replaces(packs_root: Path, tmp_path: Path) -> None:
    source = tiny_pack(tmp_path / "src", name="mine")
    first = install_pack(str(source))
    with pytest.raises(PackError) as caught:
        install_pack(str(source))
    assert caught.value.code == "pack_exists"
    assert install_pack(str(source), force=True) == first
    resolve_pack("mine")
    assert sorted(p.name for p in packs_root.iterdir()) == ["mine"]  # no temporary folders left behind


def test_install_from_folder_with_wrong_hash_installs_nothing(packs_root: Path, tmp_path: Path) -> None:
    source = tiny_pack(tmp_path / "src", name="broken")
    rewrite_byte(source / "det.onnx")
    with pytest.raises(PackError) as caught:
        install_pack(str(source))
    assert caught.value.code == "hash_mismatch"
    assert not (packs_root / "broken").exists()


def test_failed_staged_install_keeps_the_existing_pack(packs_root: Path, tmp_path: Path) -> None:
    install_pack(str(tiny_pack(tmp_path / "src", name="keep")))
    with pytest.raises(RuntimeError), staged_pack(packs_root, "keep") as staging:
        (staging / "partial.onnx").write_bytes(b"half")
        raise RuntimeError("conversion died")
    resolve_pack("keep")
    assert sorted(p.name for p in packs_root.iterdir()) == ["keep"]


def test_staged_pack_without_replace_keeps_a_concurrent_install(packs_root: Path, tmp_path: Path) -> None:
    with staged_pack(packs_root, "race", replace=False) as staging:
        (staging / "ours.txt").write_text("ours")
        (packs_root / "race").mkdir()  # another process finished first
        (packs_root / "race" / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in (packs_root / "race").iterdir()) == ["theirs.txt"]
    assert sorted(p.name for p in packs_root.iterdir()) == ["race"]


def test_unknown_source_and_remove(packs_root: Path, tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        install_pack("no-such-thing")
    assert caught.value.code == "pack_not_found"
    install_pack(str(tiny_pack(tmp_path / "src", name="gone")))
    remove_pack("gone")
    assert list_packs() == []
    with pytest.raises(PackError) as again:
        remove_pack("gone")
    assert again.value.code == "pack_not_found"

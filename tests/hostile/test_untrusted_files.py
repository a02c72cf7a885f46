"""Files from anywhere: checkpoints, checkpoint configs, verification .bin pickles, pack zips, downloads."""

from __future__ import annotations

import io
import os
import pickle
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from models.errors import PackError
from training.checkpoint import CheckpointError, atomic_save, capture_rng, load_checkpoint, restore_rng
from training.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_checkpoint_that_pickles_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"backbone": {}, "config": {}, "payload": _RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def _draws() -> tuple[float, float, float, float]:
    return random.random(), float(np.random.rand()), float(np.random.randn()), float(torch.rand(1))


def test_rng_state_round_trips_exactly_through_a_weights_only_load(tmp_path: Path) -> None:
    np.random.randn()  # leave a cached Gaussian in numpy's state
    atomic_save({"backbone": {}, "config": {}, "rng": capture_rng()}, tmp_path / "c.pt")
    expected = _draws()
    _draws()
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert _draws() == expected


def test_checkpoint_written_with_numpy_rng_tuples_still_resumes(tmp_path: Path) -> None:
    old = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save({"backbone": {}, "config": {}, "rng": old}, tmp_path / "old.pt")
    expected = _draws()
    restore_rng(load_checkpoint(tmp_path / "old.pt")["rng"])
    assert _draws() == expected


def test_code_named_in_a_checkpoint_config_needs_trust(tmp_path: Path, monkeypatch) -> None:
    from training.build import build_backbone_from_config

    marker = tmp_path / "imported"
    monkeypatch.setenv("MARGINFACE_TEST_IMPORT_MARKER", str(marker))
    sys.modules.pop("tests.hostile.factory_with_side_effect", None)
    config = {"backbone": "tests.hostile.factory_with_side_effect:make", "embedding_size": 128}
    with pytest.raises(ConfigError) as info:
        build_backbone_from_config(config)
    assert info.value.code == "untrusted_code" and "--trust-code" in str(info.value)
    assert not marker.exists()
    model = build_backbone_from_config(config, trust_code=True)
    assert marker.exists() and sum(p.numel() for p in model.parameters()) > 0


def test_export_refuses_checkpoint_code_without_trust_code(tmp_path: Path) -> None:
    from training.export.checkpoint import load_checkpoint as load_for_export

    config = {"backbone": "tests.hostile.factory_with_side_effect:make", "embedding_size": 128}
    atomic_save({"backbone": {}, "config": config}, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match="--trust-code"):
        load_for_export(tmp_path / "c.pt")


def test_bin_unpickler_refuses_bytearray_bombs(tmp_path: Path) -> None:
    from training.data.errors import DatasetError
    from training.data.verification_bin import load_bin_raw

    # protocol 2: builtins.bytearray(1_100_000_000): 1.1 GB from a few dozen bytes.
    bomb = b"\x80\x02cbuiltins\nbytearray\nJ\x00\x0e\x91A\x85R]\x86."
    assert len(bomb) < 60
    path = tmp_path / "bomb.bin"
    path.write_bytes(bomb)
    with pytest.raises(DatasetError) as info:
        load_bin_raw(path)
    assert info.value.code == "bad_bin" and "bytearray" in str(info.value)


def test_bin_with_bytes_images_still_loads(tmp_path: Path) -> None:
    from training.data.verification_bin import load_bin_raw

    path = tmp_path / "ok.bin"
    path.write_bytes(pickle.dumps(([b"a", b"b"], [True]), protocol=2))
    images, issame = load_bin_raw(path)
    assert images == [b"a", b"b"] and issame.tolist() == [True]


def test_zip_extraction_is_size_capped_and_path_safe(tmp_path: Path) -> None:
    from models.packs.insightface_pack import gather_onnx

    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../../escape.onnx", b"x" * 100)
        zf.writestr("models/bomb.onnx", b"\0" * (8 << 20))  # 8 MB of zeros: ~8 KB compressed
    assert archive.stat().st_size < 100_000
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(PackError) as info:
        gather_onnx(archive, scratch, max_bytes=1 << 20)
    assert info.value.code == "archive_too_large"
    assert not (tmp_path / "escape.onnx").exists() and not (REPO / "escape.onnx").exists()
    assert sum(p.stat().st_size for p in scratch.iterdir()) <= (1 << 20) + (1 << 20)  # one chunk at most
    files = gather_onnx(archive, scratch, max_bytes=16 << 20)
    assert sorted(p.name for p in files) == ["bomb.onnx", "escape.onnx"]
    assert all(p.parent == scratch for p in files)


def test_zip_lying_about_its_size_is_stopped_while_writing(tmp_path: Path) -> None:
    from models.packs.insightface_pack import gather_onnx

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.onnx", b"\1" * (3 << 20))
    data = bytearray(buffer.getvalue())
    # Patch the central directory's uncompressed size (offset 24 in the entry) to claim 10 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive = tmp_path / "liar.zip"
    archive.write_bytes(bytes(data))
    scratch = tmp_path / "s"
    scratch.mkdir()
    with pytest.raises(PackError):  # archive_too_large, or zipfile's own size check (bad_manifest)
        gather_onnx(archive, scratch, max_bytes=1 << 20)


def test_download_without_pinned_hash_needs_allow_unverified(tmp_path: Path, monkeypatch) -> None:
    from models.packs.install import install_pack

    monkeypatch.setenv("MARGINFACE_PACKS_DIR", str(tmp_path / "packs"))
    monkeypatch.setenv("MARGINFACE_INSIGHTFACE_URL", "http://127.0.0.1:9/nothing")
    with pytest.raises(PackError) as info:
        install_pack("insightface:buffalo_m", accept_license=True, progress=False)
    assert info.value.code == "unverified_download" and "--allow-unverified" in str(info.value)
    with pytest.raises(PackError) as info:  # allowed: it gets as far as the (offline) download
        install_pack("insightface:buffalo_m", accept_license=True, progress=False, allow_unverified=True)
    assert info.value.code == "download_failed"
    with pytest.raises(PackError) as info:  # pinned packs download without the flag
        install_pack("insightface:buffalo_l", accept_license=True, progress=False)
    assert info.value.code == "download_failed"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_training_entry_point_does_not_import_the_cli() -> None:
    loaded = _modules_after("import training.train")
    assert not {m for m in loaded if m == "cli" or m.startswith("cli.")}


def test_pack_store_does_not_import_the_installers() -> None:
    loaded = _modules_after("import models.packs.store")
    installers = {"models.packs.install", "models.packs.insightface_pack", "models.packs.default_pack"}
    assert not loaded & installers

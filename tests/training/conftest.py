"""Fixtures: a tiny folder of identities made from the six faces in insightface's t1.jpg."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

# Five landmarks of each face in t1.jpg (found once with SCRFD-2.5G; the photo ships in insightface's wheel).
T1_LANDMARKS = [
    [(760.2, 395.7), (801.9, 401.1), (770.8, 430.7), (763.4, 437.7), (805.6, 441.8)],
    [(491.7, 318.9), (540.8, 331.9), (507.1, 360.7), (483.9, 367.1), (531.9, 378.4)],
    [(87.3, 330.4), (128.9, 306.3), (120.6, 336.8), (114.9, 369.1), (148.8, 349.6)],
    [(1148.3, 326.5), (1192.4, 322.2), (1167.5, 350.1), (1154.8, 366.5), (1195.7, 362.8)],
    [(916.3, 119.3), (944.8, 113.6), (919.3, 149.6), (936.8, 171.2), (958.3, 165.8)],
    [(287.0, 210.7), (320.6, 194.7), (305.1, 227.9), (311.2, 245.0), (337.9, 231.0)],
]
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def t1_image() -> np.ndarray:
    insightface = pytest.importorskip("insightface")
    path = os.path.join(os.path.dirname(insightface.__file__), "data", "images", "t1.jpg")
    img = cv2.imread(path)
    if img is None:
        pytest.skip("insightface's t1.jpg is not available")
    return img


def perturbed_crops(
    img: np.ndarray, landmarks: np.ndarray, n: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n`` aligned 112×112 crops of one face, each with a little jitter of landmarks and brightness."""
    crops = []
    for i in range(n):
        jitter = rng.normal(0, 1.5, landmarks.shape) if i else 0.0
        matrix, _ = cv2.estimateAffinePartial2D((landmarks + jitter).astype(np.float32), ARCFACE_TEMPLATE)
        crop = cv2.warpAffine(img, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
        gain = rng.uniform(0.85, 1.15) if i else 1.0
        noisy = crop.astype(np.float32) * gain + rng.normal(0, 2, crop.shape)
        crops.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return crops


def write_identity_folder(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    img, rng = t1_image(), np.random.default_rng(seed)
    for c, lmk in enumerate(T1_LANDMARKS):
        folder = root / f"person_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, crop in enumerate(perturbed_crops(img, np.array(lmk, dtype=np.float32), per_class, rng)):
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), crop)
    return root


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 identities × 8 aligned crops (jpg) in ``<root>/<identity>/``."""
    return write_identity_folder(tmp_path_factory.mktemp("faces"))


def write_bin(path: Path, root: Path, n_pairs_per_kind: int = 10, seed: int = 0) -> Path:
    """An insightface-style .bin (pickle of (encoded images, issame)) from ``root/<identity>/*.jpg``:
    alternating same/different pairs, consecutive images form a pair."""
    import pickle

    rng = np.random.default_rng(seed)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    files = [sorted(f.glob("*.jpg")) for f in folders]
    images: list[bytes] = []
    issame: list[bool] = []
    for k in range(2 * n_pairs_per_kind):
        same = k % 2 == 0
        a = int(rng.integers(len(folders)))
        b = a if same else int((a + 1 + rng.integers(len(folders) - 1)) % len(folders))
        i, j = rng.choice(len(files[a]), 2, replace=False) if same else (rng.integers(len(files[a])), 0)
        for image in (files[a][int(i)], files[b][int(j)]):
            images.append(image.read_bytes())
        issame.append(same)
    with path.open("wb") as fh:
        pickle.dump((images, issame), fh, protocol=4)
    return path


def tiny_config(root: Path, **overrides) -> dict:
    """A config dict for a few fast steps on the tiny test backbone."""
    cfg = {
        "name": "tiny",
        "seed": 3,
        "backbone": "tests.training.tiny:tiny_net",
        "embedding_size": 16,
        "loss": {"name": "arcface", "s": 16, "m": 0.3},
        "data": {"root": str(root), "workers": 0},
        "batch_size": 8,
        "optimizer": {"lr": 0.05},
        "schedule": {"name": "poly", "unit": "step", "warmup": 2},
        "steps": 6,
        "grad_clip": 5.0,
        "checkpoint": {"every_steps": 2, "keep_last": 2},
        "log_every": 2,
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture(scope="session")
def lfw_like_bin(face_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bin(tmp_path_factory.mktemp("bins") / "tiny.bin", face_folder)


@pytest.fixture(scope="session")
def trained_checkpoint(face_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny backbone after a few steps (shared by the evaluation tests)."""
    from training.config import validate_config
    from training.trainer import Trainer

    out = tmp_path_factory.mktemp("run")
    cfg = validate_config(tiny_config(face_folder, steps=12, checkpoint={"every_steps": 12}))
    Trainer(cfg, out, progress=False).fit()
    return out / "checkpoint_last.pt"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors on a shared CPU: one intra-op thread is faster and steadier than oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

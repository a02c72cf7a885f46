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

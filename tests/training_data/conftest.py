"""Real face images on disk for the data tests (insightface's sample photos, scikit-image's astronaut)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def real_crops(aligned_crop_path: Path, t1_image_path: Path, astronaut_bgr: np.ndarray) -> list[np.ndarray]:
    """Four 112×112 BGR crops of real faces: the aligned Tom Hanks crop, the astronaut's face and two
    faces of t1.jpg (boxes cut by hand, then resized)."""
    hanks = cv2.imread(str(aligned_crop_path))
    t1 = cv2.imread(str(t1_image_path))
    patches = [astronaut_bgr[40:240, 140:340], t1[120:320, 90:290], t1[90:290, 560:760]]
    return [hanks] + [cv2.resize(p, (112, 112), interpolation=cv2.INTER_AREA) for p in patches]


@pytest.fixture
def identity_folder(tmp_path: Path, real_crops: list[np.ndarray]) -> Path:
    """``root/<identity>/`` with 4 identities × 3 crops (JPEG and PNG; each a different variant), plus an
    empty identity folder and a stray text file that must both be ignored."""
    root = tmp_path / "crops"
    names = ["zoe", "adam", "mia", "bob"]  # not in sorted order on purpose
    for name, crop in zip(names, real_crops, strict=True):
        folder = root / name
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "0.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(folder / "1.png"), cv2.convertScaleAbs(crop, alpha=0.8, beta=20))
        cv2.imwrite(str(folder / "2.jpg"), cv2.GaussianBlur(crop, (5, 5), 1.5))
    (root / "empty").mkdir()
    (root / "zoe" / "notes.txt").write_text("not an image")
    return root

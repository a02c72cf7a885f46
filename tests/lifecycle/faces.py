"""Real aligned faces for parity checks: t1.jpg's six faces, the astronaut, the Tom Hanks crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def real_aligned_faces(t1_bgr: np.ndarray, astronaut_bgr: np.ndarray, aligned_crop_path: Path) -> np.ndarray:
    """N×112×112×3 uint8 BGR crops aligned by the default pack (and one crop aligned by insightface)."""
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack("default")
    crops = []
    for image in (t1_bgr, astronaut_bgr):
        faces = pipeline.detect(image)
        crops.append(pipeline.align(image, faces))
    crops.append(cv2.imread(str(aligned_crop_path))[None])
    out = np.concatenate(crops)
    assert len(out) >= 8
    return out


def to_trainer_input(crops_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 crops → N×3×112×112 RGB float32 in [−1, 1] (the trainer's normalisation)."""
    rgb = crops_bgr[:, :, :, ::-1].astype(np.float32)
    return np.ascontiguousarray(((rgb - 127.5) / 127.5).transpose(0, 3, 1, 2))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

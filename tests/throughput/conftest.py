"""Fixtures of the throughput tests: the default pack's pipeline and phone-resolution photos made from
insightface's t1.jpg (six faces)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

PHONE = (4032, 3024)  # a 12 MP phone photo


def jpeg_bytes(bgr: np.ndarray, quality: int = 92, exif_orientation: int | None = None) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    out = io.BytesIO()
    if exif_orientation is None:
        image.save(out, "JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def phone_photo(bgr: np.ndarray, size: tuple[int, int] = PHONE) -> np.ndarray:
    """``bgr`` scaled (aspect kept) to fill ``size`` and centred on a grey background."""
    width, height = size
    scale = min(width / bgr.shape[1], height / bgr.shape[0])
    new_size = (int(bgr.shape[1] * scale), int(bgr.shape[0] * scale))
    resized = cv2.resize(bgr, new_size, interpolation=cv2.INTER_CUBIC)
    canvas = np.full((height, width, 3), 128, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


@pytest.fixture(scope="session")
def pipeline(default_pack: Path):
    from models.pipeline import FacePipeline

    return FacePipeline.from_pack(default_pack, ["cpu"], threads=1)


@pytest.fixture(scope="session")
def t1_phone_jpeg(t1_image_path: Path) -> bytes:
    """t1.jpg at 12 MP (4032×3024, faces ~250 px wide), JPEG-encoded as a phone would."""
    return jpeg_bytes(phone_photo(cv2.imread(str(t1_image_path))))

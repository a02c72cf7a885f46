"""Decoding of encoded face crops (JPEG/PNG bytes or files) into checked 112×112 uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data.errors import DatasetError

CROP_SIZE = 112
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def decode_bgr(data: bytes | bytearray | memoryview | np.ndarray, source: str = "image") -> np.ndarray:
    """Decode JPEG/PNG bytes into an H×W×3 uint8 BGR array (grey and BGRA are converted)."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size == 0:
        raise DatasetError(f"{source}: empty image data", "corrupt_image")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{source}: cannot decode (corrupt or unsupported format)", "corrupt_image")
    return image


def check_crop(image: np.ndarray, source: str) -> np.ndarray:
    """Refuse anything but an aligned 112×112 crop (resizing would silently change the face geometry)."""
    if image.shape[:2] != (CROP_SIZE, CROP_SIZE):
        h, w = image.shape[:2]
        raise DatasetError(
            f"{source}: is {w}×{h}, training crops must be {CROP_SIZE}×{CROP_SIZE}; "
            "align raw photos first with `marginface data align SRC DST`",
            "wrong_image_size",
        )
    return image


def read_crop_rgb(path: str | Path) -> np.ndarray:
    """Read an aligned crop file as a 112×112×3 uint8 RGB array."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})", "corrupt_image") from exc
    bgr = check_crop(decode_bgr(data, str(path)), str(path))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_image(image_bgr: np.ndarray, ext: str = ".jpg", jpeg_quality: int = 95) -> bytes:
    """Encode a BGR array as JPEG (``quality``) or PNG bytes."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext.lower() in {".jpg", ".jpeg"} else []
    ok, buffer = cv2.imencode(ext, image_bgr, params)
    if not ok:
        raise DatasetError(f"cannot encode an image as {ext}", "corrupt_image")
    return buffer.tobytes()

"""insightface verification ``.bin`` files (lfw.bin, cfp_fp.bin, agedb_30.bin, …).

A pickle of ``(list of encoded JPEG/PNG images, list of bool issame)``; pairs are consecutive images.
Files made under Python 2 hold ``str`` images, read back as ``bytes`` with ``encoding="bytes"``; some
hold NumPy uint8 arrays. Loading uses a restricted unpickler: only NumPy array reconstruction is
allowed, so a hostile ``.bin`` cannot run code.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from training.data.errors import DatasetError
from training.data.images import CROP_SIZE, decode_bgr

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # Python 3 pickles of bytes at protocol ≤ 2
    # Not bytearray: bytearray(1_100_000_000) is a 59-byte pickle that allocates 1.1 GB.
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a verification .bin")
        return super().find_class(module, name)


def _as_bytes(item: object, position: int, path: Path) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8:
        return item.tobytes()
    if isinstance(item, str):  # a Python 2 str unpickled as text
        return item.encode("latin-1")
    raise DatasetError(f"{path}: image {position} is a {type(item).__name__}, not encoded bytes", "bad_bin")


def load_bin_raw(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """The encoded images and issame flags of a ``.bin`` (checked: 2 images per pair)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"verification set not found: {path}", "dataset_not_found")
    try:
        with open(path, "rb") as handle:
            content = _SafeUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DatasetError(f"{path}: not a verification .bin ({exc})", "bad_bin") from exc
    if not isinstance(content, (tuple, list)) or len(content) != 2:
        raise DatasetError(f"{path}: expected a pickled (images, issame) pair", "bad_bin")
    images, issame = content
    issame = np.asarray(list(issame), dtype=bool)
    if len(images) != 2 * len(issame):
        raise DatasetError(f"{path}: {len(images)} images for {len(issame)} pairs (2 per pair)", "bad_bin")
    return [_as_bytes(item, i, path) for i, item in enumerate(images)], issame


def read_bin(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Decode a ``.bin``: (list of 112×112×3 uint8 BGR crops, bool array of one flag per pair).

    Images of another size are resized to 112×112, as insightface's loader does.
    """
    encoded, issame = load_bin_raw(path)
    images = []
    for i, data in enumerate(encoded):
        image = decode_bgr(data, f"{path} image {i}")
        if image.shape[:2] != (CROP_SIZE, CROP_SIZE):
            image = cv2.resize(image, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
        images.append(image)
    return images, issame


def write_bin(path: str | Path, encoded_images: Sequence[bytes], issame: Sequence[bool]) -> None:
    """Write a ``.bin`` insightface's ``load_bin`` reads (atomically: a temp file renamed into place)."""
    path = Path(path)
    images = [bytes(data) for data in encoded_images]
    flags = [bool(flag) for flag in issame]
    if len(images) != 2 * len(flags):
        raise DatasetError(f"{len(images)} images for {len(flags)} pairs (need 2 per pair)", "bad_bin")
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as handle:
            pickle.dump((images, flags), handle, protocol=4)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

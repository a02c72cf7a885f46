"""Safe image decoding: bytes or files to H×W×3 uint8 BGR arrays.

Limits are checked before any pixel is decoded: the byte size first, then the dimensions that PIL reads
lazily from the header. Accepted formats are JPEG, PNG, WebP and BMP. EXIF orientation is applied.
Grey images are replicated to three channels; images with alpha are composited on black (fully transparent
pixels become black, like the border of an aligned crop); 16-bit images are scaled to 8 bits.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import InvalidImageError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
_FORMAT_ALIASES = {"MPO": "JPEG"}  # multi-picture JPEGs from phone cameras: PIL reads the first picture

# Formats PIL does not identify but that users commonly send; named so the error says what they sent.
_KNOWN_UNSUPPORTED_MAGIC = {
    b"ftypheic": "HEIC",
    b"ftypheix": "HEIC",
    b"ftypmif1": "HEIF",
    b"ftypavif": "AVIF",
}

# MarginFace enforces its own ``max_pixels`` before decoding; PIL's warning for images larger than its
# default limit would only repeat that check (and is emitted at header-parse time).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_image(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an encoded image to a contiguous H×W×3 uint8 BGR array.

    Raises InvalidImageError with code empty_image, image_too_large, too_many_pixels, unsupported_format,
    corrupt_image or bad_image.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected encoded image bytes, got {type(data).__name__}", code="bad_image")
    size = len(data)
    if size == 0:
        raise InvalidImageError("the image is empty (0 bytes)", code="empty_image")
    if size > max_bytes:
        raise InvalidImageError(
            f"the image is {size} bytes, over the limit of {max_bytes} bytes", code="image_too_large"
        )
    image = _open_lazily(bytes(data), max_pixels)
    try:
        return _to_bgr(image)
    finally:
        image.close()


def read_image(
    path: str | os.PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read and decode an image file (size checked with stat before reading)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidImageError(
                f"{path} is {size} bytes, over the limit of {max_bytes} bytes", code="image_too_large"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"cannot read {path}: {exc.strerror or exc}", code="bad_image") from exc
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def _open_lazily(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only and enforce the format and pixel limits."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"the image declares too many pixels: {exc}", code="too_many_pixels") from exc
    except UnidentifiedImageError as exc:
        for magic, name in _KNOWN_UNSUPPORTED_MAGIC.items():
            if data[4:12] == magic:
                raise InvalidImageError(
                    f"{name} images are not supported; use one of {', '.join(SUPPORTED_FORMATS)}",
                    code="unsupported_format",
                ) from exc
        raise InvalidImageError("the data is not a readable image", code="corrupt_image") from exc
    except Exception as exc:  # PIL plugins raise many types (OSError, SyntaxError, struct.error, ...)
        raise InvalidImageError(f"the image header is corrupt: {exc}", code="corrupt_image") from exc
    if _FORMAT_ALIASES.get(image.format, image.format) not in SUPPORTED_FORMATS:
        fmt = image.format
        image.close()
        raise InvalidImageError(
            f"{fmt} images are not supported; use one of {', '.join(SUPPORTED_FORMATS)}",
            code="unsupported_format",
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise InvalidImageError(f"the image has no pixels ({width}×{height})", code="corrupt_image")
    if width * height > max_pixels:
        image.close()
        raise InvalidImageError(
            f"the image is {width}×{height} = {width * height} pixels, over the limit of {max_pixels}",
            code="too_many_pixels",
        )
    return image


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Decode pixels, apply EXIF orientation and convert any mode to 3-channel 8-bit BGR."""
    try:
        image.load()
        image = _apply_orientation(image)
        rgb = _to_rgb_array(image)
    except InvalidImageError:
        raise
    except MemoryError as exc:
        raise InvalidImageError("not enough memory to decode the image", code="too_many_pixels") from exc
    except Exception as exc:  # truncated or malformed data surfaces as OSError, SyntaxError, EOFError, ...
        raise InvalidImageError(
            f"the image data is corrupt or truncated: {exc}", code="corrupt_image"
        ) from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(image).astype(np.float32)
        # 16-bit sources are scaled to 8 bits (65535 -> 255); 32-bit integer images are rare and clipped.
        grey8 = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if mode == "F":
        grey8 = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[:, :, 3:4]
        # Composite on black: colour × alpha / 255, rounded.
        return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)
    if mode != "RGB":
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InvalidImageError(f"unexpected decoded image {array.shape} {array.dtype}", code="bad_image")
    return array

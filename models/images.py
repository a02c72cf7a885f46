"""Safe image decoding: bytes or files to H×W×3 uint8 BGR arrays, with bounded memory.

Limits are checked before any pixel is decoded: the byte size first, then the dimensions that PIL reads
lazily from the header. Accepted formats are JPEG, PNG, WebP and BMP. EXIF orientation is applied.
Grey images are replicated to three channels; images with alpha are composited on black (fully transparent
pixels become black, like the border of an aligned crop); 16-bit images are scaled to 8 bits.

Memory: every conversion runs in uint8 on strips of rows, so decoding a W×H image peaks at about
``DECODE_BYTES_PER_PIXEL`` × W × H bytes (the decoder's own buffer of at most 4 bytes per pixel plus the
3-byte BGR result), whatever the mode (16-bit, alpha, palette, CMYK). WebP goes through OpenCV, which
decodes into one buffer (PIL's WebP reader keeps two more full-size RGBA canvases). ``decoding()`` also
reserves that many bytes from a shared ``MemoryBudget`` before decoding, so concurrent decodes stay
within one bound.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from models.errors import InvalidImageError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DECODE_BYTES_PER_PIXEL = 8  # decoder buffer (≤ 4) + BGR result (3) + slack (measured ≤ 7.8); decode_cost()
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
_FORMAT_ALIASES = {"MPO": "JPEG"}  # multi-picture JPEGs from phone cameras: PIL reads the first picture
_STRIP_PIXELS = 1 << 20  # rows converted at a time: ~1 MP, so a strip's temporaries stay a few MB
_ORIENTATION = 0x0112

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


class MemoryBudget:
    """Bytes that concurrent decodes may hold together; ``reserve`` blocks until its share is free.

    A request for more than the capacity waits for the whole budget (it then runs alone), so one large
    image never deadlocks and never runs beside another. For this process's threads; worker processes
    share a ``models.shared_budget.SharedBudget``.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._used = self._peak = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        return self._peak

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        amount = min(max(0, int(nbytes)), self.capacity)
        with self._cond:
            self._cond.wait_for(lambda: self._used + amount <= self.capacity)
            self._used += amount
            self._peak = max(self._peak, self._used)
        try:
            yield
        finally:
            with self._cond:
                self._used -= amount
                self._cond.notify_all()


def return_freed_memory_promptly(threshold: int = 8 << 20, keep: int = 32 << 20) -> bool:
    """Make glibc serve allocations of ``threshold`` bytes and more with mmap, so freed large image
    buffers go back to the OS at once, and keep up to ``keep`` bytes free at the heap's top for reuse.
    Without it glibc raises its mmap threshold after the first large free (PIL frees 16 MB blocks) and
    keeps later strips and buffers on the heap, where RSS only grows. With a 1 MB threshold (and glibc's
    128 KB trim) every photo's detection buffers (the 640×640 float input is 4.9 MB) were mapped and
    unmapped each time: ~990 page faults and 2-2.6 ms of kernel time per LFW photo, 7 % of the pipeline
    (issue 17); at 8 MB with 32 MB kept, none."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mapped = libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD (fixing it stops the adjustment)
        return bool(mapped and libc.mallopt(-1, keep))  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False


def decode_cost(width: int, height: int) -> int:
    """Peak bytes that decoding a ``width``×``height`` image may take (plus one strip's temporaries)."""
    return decode_cost_of(width * height)


def decode_cost_of(pixels: int) -> int:
    """``decode_cost`` of an image of ``pixels`` pixels: the default decode budget for a pixel limit."""
    return DECODE_BYTES_PER_PIXEL * pixels + 16 * _STRIP_PIXELS


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
    with decoding(data, max_bytes=max_bytes, max_pixels=max_pixels) as image:
        return image


@contextmanager
def decoding(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    budget: MemoryBudget | None = None,
) -> Iterator[np.ndarray]:
    """``decode_image`` that holds ``decode_cost`` bytes of ``budget`` from before decoding until the
    ``with`` block ends (the caller works on the array inside it)."""
    data = _checked_bytes(data, max_bytes)
    image = _open_lazily(data, max_pixels)
    cost = decode_cost(*image.size)
    reservation = budget.reserve(cost) if budget is not None else _nothing()
    with reservation:
        try:
            array = _decode(image, data)
        finally:
            image.close()
        yield array


def _checked_bytes(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes:
    """The encoded bytes, refused when not bytes, empty or over ``max_bytes`` (before any decoding)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected encoded image bytes, got {type(data).__name__}", code="bad_image")
    size = len(data)
    if size == 0:
        raise InvalidImageError("the image is empty (0 bytes)", code="empty_image")
    if size > max_bytes:
        raise InvalidImageError(
            f"the image is {size} bytes, over the limit of {max_bytes} bytes", code="image_too_large"
        )
    return bytes(data)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


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


def _decode(image: Image.Image, data: bytes) -> np.ndarray:
    """Decode pixels, convert any mode to 3-channel 8-bit BGR and apply the EXIF orientation."""
    try:
        orientation = _orientation(image)
        if image.format == "WEBP":
            image.close()  # PIL's WebP decoder would allocate its canvases on load
            bgr = _decode_webp(data)
        else:
            image.load()
            bgr = _pil_to_bgr(image)
            image.close()
        return _orient(bgr, orientation)
    except InvalidImageError:
        raise
    except MemoryError as exc:
        raise InvalidImageError("not enough memory to decode the image", code="too_many_pixels") from exc
    except Exception as exc:  # truncated or malformed data surfaces as OSError, SyntaxError, EOFError, ...
        raise InvalidImageError(
            f"the image data is corrupt or truncated: {exc}", code="corrupt_image"
        ) from exc


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8); a malformed EXIF block leaves the pixels as stored."""
    try:
        value = int(image.getexif().get(_ORIENTATION, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(bgr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels upright, as ``ImageOps.exif_transpose`` would (one copy at most)."""
    views = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(views[orientation](bgr))


def _decode_webp(data: bytes) -> np.ndarray:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.ndim not in (2, 3) or decoded.dtype != np.uint8:
        raise InvalidImageError("the image data is corrupt or truncated", code="corrupt_image")
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2BGR)
    if decoded.shape[2] == 3:
        return decoded
    height, width = decoded.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    for top, bottom in _strips(height, width):
        out[top:bottom] = _composite(decoded[top:bottom])
    return out


def _pil_to_bgr(image: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image strip by strip into a new BGR array (temporaries: one strip)."""
    width, height = image.size
    out = np.empty((height, width, 3), np.uint8)
    for top, bottom in _strips(height, width):
        out[top:bottom] = _strip_to_bgr(image.crop((0, top, width, bottom)))
    return out


def _strips(height: int, width: int) -> Iterator[tuple[int, int]]:
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        yield top, min(height, top + rows)


def _strip_to_bgr(strip: Image.Image) -> np.ndarray:
    mode = strip.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit sources are scaled to 8 bits (65535 -> 255, rounded); 32-bit integer images are clipped.
        grey = np.asarray(strip).astype(np.int64)
        grey8 = np.clip((grey + 128) // 257, 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if mode == "F":
        grey8 = np.clip(np.rint(np.asarray(strip)), 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in strip.info)
    if has_alpha:
        return _composite(np.asarray(strip.convert("RGBA"))[:, :, [2, 1, 0, 3]])
    if mode != "RGB":
        strip = strip.convert("RGB")
    array = np.asarray(strip)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InvalidImageError(f"unexpected decoded image {array.shape} {array.dtype}", code="bad_image")
    return array[:, :, ::-1]


def _composite(bgra: np.ndarray) -> np.ndarray:
    """Colour × alpha / 255, rounded: compositing on black (uint16 only for one strip)."""
    alpha = bgra[:, :, 3:4].astype(np.uint16)
    return ((bgra[:, :, :3] * alpha + 127) // 255).astype(np.uint8)


# --- issue 17: JPEG decoded at reduced scale (libjpeg's DCT scaling) when far larger than needed --------


@contextmanager
def decoding_reduced(
    data: bytes | bytearray | memoryview,
    *,
    min_side: int | Callable[[int, int], int | None] | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    budget: MemoryBudget | None = None,
) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """``decoding`` that decodes a JPEG at 1/2, 1/4 or 1/8 scale while its longer side stays at least
    ``min_side`` (None: full size; or a function of the upright full (width, height) returning it);
    yields ``(array, (full_width, full_height))``, the full size upright.

    The same limits apply: bytes and the declared (full) pixel count are checked before decoding, and
    ``budget`` reserves the cost of the pixels actually decoded. Other formats decode at full size.
    """
    data = _checked_bytes(data, max_bytes)
    image = _open_lazily(data, max_pixels)
    width, height = image.size
    upright = (height, width) if _orientation(image) in (5, 6, 7, 8) else (width, height)
    if callable(min_side):
        min_side = min_side(*upright)
    if min_side and _FORMAT_ALIASES.get(image.format, image.format) == "JPEG":
        longest = max(width, height)
        if longest >= 2 * min_side:
            ratio = min_side / longest
            try:  # PIL picks the largest DCT scale whose result is at least this size
                image.draft(None, (max(1, math.ceil(width * ratio)), max(1, math.ceil(height * ratio))))
            except Exception:  # noqa: BLE001 - a JPEG that cannot be scaled decodes at full size
                pass
    cost = decode_cost(*image.size)
    reservation = budget.reserve(cost) if budget is not None else _nothing()
    with reservation:
        try:
            array = _decode(image, data)
        finally:
            image.close()
        yield array, upright

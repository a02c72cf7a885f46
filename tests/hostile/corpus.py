"""A hostile image corpus, generated on the fly (nothing is stored in the repository).

Big-but-small files are written without materialising their pixels where possible: PNGs are streamed row
by row through zlib. Each entry is (name, bytes); ``width × height`` of the big ones is ``BIG``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image

BIG = (8000, 5000)  # 40 MP: the old default max_image_pixels, the size the issue measured


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_stream(width: int, height: int, *, bit_depth: int = 8, colour: int = 2, extra: bytes = b"") -> bytes:
    """A valid PNG of constant pixels (colour type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA), built row by row."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\0" + bytes([0x7F]) * (width * channels * bit_depth // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    idat = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width×height RGB pixels but carries almost no data (a decompression bomb
    header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def webp_big(width: int, height: int) -> bytes:
    """A lossless WebP with alpha of constant pixels (a few KB for 40 MP)."""
    pixels = np.full((height, width, 4), 127, np.uint8)
    ok, data = cv2.imencode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok
    return data.tobytes()


def cmyk_jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (width, height), (10, 20, 30, 40)).save(buffer, "JPEG", quality=50)
    return buffer.getvalue()


def hostile_images(big: tuple[int, int] = BIG) -> Iterator[tuple[str, bytes]]:
    """The corpus: (name, data). Every entry is either refused with a 4xx or decodes within the limits."""
    w, h = big
    yield "bomb_png_30000x30000", png_header_only(30000, 30000)
    yield "bomb_png_65535x65535", png_header_only(65535, 65535)
    # A huge header: a 1 MB zTXt-like comment chunk ahead of the pixels.
    yield "huge_text_chunk_png", png_stream(64, 64, extra=_chunk(b"tEXt", b"c\0" + b"x" * (1 << 20)))
    yield "png16_rgba_40mp", png_stream(w, h, bit_depth=16, colour=6)
    yield "png16_grey_40mp", png_stream(w, h, bit_depth=16, colour=0)
    yield "png8_rgba_40mp", png_stream(w, h, bit_depth=8, colour=6)
    yield "webp_rgba_40mp", webp_big(w, h)
    yield "cmyk_jpeg_40mp", cmyk_jpeg(w, h)
    full = png_stream(w, h, bit_depth=8, colour=2)
    yield "truncated_png_40mp", full[: len(full) // 2]
    yield "garbage", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

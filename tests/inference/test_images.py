"""Image decoding: formats, conversions and one typed error per kind of bad input."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.errors import InvalidImageError
from models.images import decode_image, read_image


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width×height RGB pixels, followed by a tiny IDAT and IEND."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def error_code(data: bytes, **limits) -> str:
    with pytest.raises(InvalidImageError) as info:
        decode_image(data, **limits)
    return info.value.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_supported_formats_decode_to_contiguous_bgr(astronaut_bgr, fmt):
    rgb = Image.fromarray(np.ascontiguousarray(astronaut_bgr[:, :, ::-1]))
    decoded = decode_image(encode(rgb, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {})))
    assert decoded.shape == astronaut_bgr.shape and decoded.dtype == np.uint8
    assert decoded.flags["C_CONTIGUOUS"]
    tolerance = 0 if fmt in ("PNG", "BMP") else 12
    assert np.abs(decoded.astype(int) - astronaut_bgr.astype(int)).mean() <= tolerance


def test_channel_order_is_bgr():
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    assert decode_image(encode(red, "PNG"))[0, 0].tolist() == [0, 0, 255]


def test_empty_garbage_and_truncated(astronaut_bgr):
    assert error_code(b"") == "empty_image"
    assert error_code(b"this is not an image, just text " * 8) == "corrupt_image"
    jpeg = encode(Image.fromarray(astronaut_bgr[:, :, ::-1].copy()), "JPEG")
    assert error_code(jpeg[: len(jpeg) // 2]) == "corrupt_image"
    assert error_code(jpeg[:40]) == "corrupt_image"
    with pytest.raises(InvalidImageError) as info:
        decode_image("not bytes")  # type: ignore[arg-type]
    assert info.value.code == "bad_image"


def test_byte_limit_checked_before_decoding(tmp_path):
    data = png_header_only(10, 10)
    assert error_code(data, max_bytes=len(data) - 1) == "image_too_large"
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(InvalidImageError) as info:
        read_image(path, max_bytes=10)
    assert info.value.code == "image_too_large"
    with pytest.raises(InvalidImageError) as info:
        read_image(tmp_path / "missing.png")
    assert info.value.code == "bad_image"


def test_declared_dimensions_rejected_before_decoding():
    assert error_code(png_header_only(8000, 6000)) == "too_many_pixels"  # under PIL's bomb limit: our check
    assert error_code(png_header_only(30000, 30000)) == "too_many_pixels"  # PIL's bomb error, mapped
    assert error_code(png_header_only(100, 100), max_pixels=9999) == "too_many_pixels"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_huge_header_does_not_allocate():
    """A 30000×30000 (2.7 GB as RGB) header must be refused with the process staying small."""
    # VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over from the parent.
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from tests.inference.test_images import png_header_only;"
        "from models.images import decode_image; from models.errors import InvalidImageError\n"
        "for w, h in ((30000, 30000), (8000, 6000)):\n"
        "    try: decode_image(png_header_only(w, h))\n"
        "    except InvalidImageError as e: print(e.code)\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["too_many_pixels", "too_many_pixels"]
    assert int(out[2]) < 150 * 1024, f"peak RSS {int(out[2]) // 1024} MiB"  # the interpreter alone is ~50


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO"])
def test_unsupported_formats(fmt):
    assert error_code(encode(Image.new("RGB", (16, 16), (10, 20, 30)), fmt)) == "unsupported_format"


def test_heic_magic_is_named_unsupported():
    assert error_code(b"\0\0\0\x18ftypheic" + b"\0" * 64) == "unsupported_format"


def test_grey_becomes_three_equal_channels():
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), mode="L")
    decoded = decode_image(encode(grey, "PNG"))
    assert decoded.shape == (8, 8, 3)
    assert (decoded[:, :, 0] == np.arange(64).reshape(8, 8)).all() and (
        decoded[:, :, 0] == decoded[:, :, 2]
    ).all()


def test_alpha_is_composited_on_black():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = [[0, 255], [128, 255]]
    decoded = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    assert decoded[0, 0].tolist() == [0, 0, 0]
    assert decoded[0, 1].tolist() == [50, 100, 200]
    assert decoded[1, 0].tolist() == [25, 50, 100]


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    values = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"))
    assert decoded[:, :, 1].tolist() == [[0, 100], [200, 255]]


def test_exif_orientation_is_applied():
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)  # left half red, as stored
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.shape == (40, 20, 3)
    # After a clockwise turn the stored left half is on top; red is channel 2 in BGR.
    assert decoded[5, 10, 2] > 200 and decoded[35, 10, 2] < 50


def test_mpo_from_phone_cameras_is_read_as_jpeg():
    first, second = Image.new("RGB", (32, 16), (0, 0, 255)), Image.new("RGB", (32, 16), (255, 0, 0))
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data)
    assert decoded.shape == (16, 32, 3) and decoded[8, 16, 0] > 200  # the first picture (blue)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_mutated_files_raise_only_typed_errors(astronaut_bgr, fmt):
    data = bytearray(encode(Image.fromarray(astronaut_bgr[:64, :64, ::-1].copy()), fmt))
    rng = np.random.default_rng(7)
    for _ in range(60):
        mutated = bytearray(data)
        for index in rng.integers(0, min(len(data), 200), size=3):  # headers live at the start
            mutated[index] = int(rng.integers(0, 256))
        cut = int(rng.integers(len(data) // 2, len(data) + 1))
        try:
            image = decode_image(bytes(mutated[:cut]))
        except InvalidImageError:
            continue
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8

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


def _reference_bgr(data: bytes) -> np.ndarray:
    """What the decoder must produce, computed the slow obvious way (PIL, uint16 compositing)."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        rgb = ((rgba[:, :, :3] * rgba[:, :, 3:4] + 127) // 255).astype(np.uint8)
    else:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _gradient(width: int, height: int, channels: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 7 + y * 3 + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=2).astype(np.uint8)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P+transparency", "CMYK", "L", "1", "P"])
def test_every_mode_matches_the_reference_in_strips(mode, monkeypatch):
    import models.images as images

    monkeypatch.setattr(images, "_STRIP_PIXELS", 37 * 11)  # many uneven strips on a small image
    base = _gradient(37, 29, 4)
    if mode == "RGBA":
        image = Image.fromarray(base, "RGBA")
    elif mode == "LA":
        image = Image.fromarray(base[:, :, :2].copy(), "LA")
    elif mode == "CMYK":
        image = Image.fromarray(base, "CMYK")
    elif mode.startswith("P"):
        image = Image.fromarray(base[:, :, :3].copy(), "RGB").quantize(64)
        if mode == "P+transparency":
            image.info["transparency"] = 3
    else:
        image = Image.fromarray(base[:, :, 0].copy(), "L").convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    params = {"transparency": 3} if mode == "P+transparency" else {}
    data = encode(image, fmt, **params)
    np.testing.assert_array_equal(decode_image(data), _reference_bgr(data))


def test_sixteen_bit_rgba_png_matches_the_reference():
    buffer = io.BytesIO()
    values = _gradient(33, 17, 4).astype(np.uint16) * 257
    ok, encoded = __import__("cv2").imencode(".png", values[:, :, [2, 1, 0, 3]])
    assert ok
    buffer.write(encoded.tobytes())
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).mode == "RGBA"  # PIL reads 16-bit RGBA as 8-bit RGBA
    np.testing.assert_array_equal(decode_image(data), _reference_bgr(data))


def test_webp_with_alpha_is_composited_like_png():
    import cv2

    bgra = _gradient(40, 24, 4)
    ok, webp = cv2.imencode(".webp", bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    assert ok
    expected = ((bgra[:, :, :3].astype(np.uint16) * bgra[:, :, 3:4] + 127) // 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(webp.tobytes()), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pil(orientation):
    image = Image.fromarray(_gradient(24, 10, 3))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(image, "PNG", exif=exif.tobytes())
    np.testing.assert_array_equal(decode_image(data), _reference_bgr(data))


def test_decode_budget_bounds_concurrent_decodes():
    import threading

    from models.images import MemoryBudget, decode_cost, decoding

    png = encode(Image.fromarray(_gradient(300, 200, 4), "RGBA"), "PNG")
    budget = MemoryBudget(decode_cost(300, 200) * 2)  # room for two at a time
    inside, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with decoding(png, budget=budget) as image:
            with lock:
                inside += 1
                most = max(most, inside)
            assert image.shape == (200, 300, 3)
            threading.Event().wait(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2 and budget.used == 0 and budget.peak <= budget.capacity
    small = MemoryBudget(10)  # an image over the whole budget runs alone instead of waiting forever
    with decoding(png, budget=small) as image:
        assert image.shape == (200, 300, 3) and small.used == small.capacity


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.parametrize("kind", ["png8_rgba", "png16_rgba", "webp_rgba"])
def test_forty_megapixel_decode_stays_under_eight_bytes_per_pixel(kind):
    """The issue's 166 KB RGBA PNG peaked at 1.5 GB; uint8 strips keep a 40 MP decode under 8 B/pixel."""
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from tests.hostile.corpus import png_stream, webp_big\n"
        f"kind = {kind!r}\n"
        "data = webp_big(8000, 5000) if kind == 'webp_rgba' else "
        "png_stream(8000, 5000, bit_depth=16 if kind == 'png16_rgba' else 8, colour=6)\n"
        "from models.images import decode_image\n"
        "def kib(k): return int([l.split()[1] for l in open('/proc/self/status') if l.startswith(k)][0])\n"
        "open('/proc/self/clear_refs', 'w').write('5'); start = kib('VmRSS')\n"
        "image = decode_image(data)\n"
        "print(image.shape, (kib('VmHWM') - start) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    shape, peak_mb = out.rsplit(" ", 1)
    assert shape == "(5000, 8000, 3)"
    assert int(peak_mb) < 8 * 40, f"decoding peaked at {peak_mb} MB above the start"

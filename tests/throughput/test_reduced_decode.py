"""JPEG decode at reduced scale keeps today's limits: bytes and declared pixels checked before decoding,
the memory budget charged for what is decoded; other formats decode at full size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.errors import InvalidImageError
from models.images import MemoryBudget, decode_cost, decoding_reduced
from tests.throughput.conftest import jpeg_bytes


@pytest.fixture(scope="module")
def noise_12mp() -> np.ndarray:
    rng = np.random.default_rng(17)
    return rng.integers(0, 255, (3024, 4032, 3), dtype=np.uint8)


def test_a_large_jpeg_decodes_at_the_largest_scale_that_keeps_min_side(noise_12mp):
    data = jpeg_bytes(noise_12mp)
    budget = MemoryBudget(10**10)
    with decoding_reduced(data, min_side=1280, budget=budget) as (image, full):
        assert image.shape == (1512, 2016, 3) and full == (4032, 3024)
        assert budget.used == decode_cost(2016, 1512)  # charged for the decoded pixels, not the declared
    assert budget.used == 0
    with decoding_reduced(data, min_side=500) as (image, _):
        assert image.shape == (378, 504, 3)  # 1/8: the smallest libjpeg scale
    with decoding_reduced(data, min_side=lambda w, h: None) as (image, _):
        assert image.shape == (3024, 4032, 3)


def test_reduced_pixels_match_a_full_decode_shrunk(t1_phone_jpeg):
    with decoding_reduced(t1_phone_jpeg, min_side=1000) as (small, _):
        assert small.shape == (756, 1008, 3)
        with decoding_reduced(t1_phone_jpeg, min_side=None) as (big, _):
            shrunk = big.reshape(756, 4, 1008, 4, 3).mean(axis=(1, 3))
        assert np.abs(small.astype(np.float32) - shrunk).mean() < 2


def test_limits_are_those_of_the_full_image(noise_12mp):
    data = jpeg_bytes(noise_12mp)
    with pytest.raises(InvalidImageError) as err:
        with decoding_reduced(data, min_side=500, max_pixels=4032 * 3024 - 1):
            pass
    assert err.value.code == "too_many_pixels"  # although the 1/8 decode would be 0.2 MP
    with pytest.raises(InvalidImageError) as err:
        with decoding_reduced(data, min_side=500, max_bytes=len(data) - 1):
            pass
    assert err.value.code == "image_too_large"
    with pytest.raises(InvalidImageError) as err:
        with decoding_reduced(data[: len(data) // 2], min_side=500):
            pass
    assert err.value.code == "corrupt_image"


def test_other_formats_decode_at_full_size():
    out = io.BytesIO()
    Image.new("RGB", (3000, 2000), (10, 20, 30)).save(out, "PNG")
    with decoding_reduced(out.getvalue(), min_side=500) as (image, full):
        assert image.shape == (2000, 3000, 3) and full == (3000, 2000)

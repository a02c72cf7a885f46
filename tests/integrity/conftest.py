"""Integrity fixtures: face photos with known identities, real server processes, stores."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tests.integrity.model import Photo
from tests.server.conftest import encode_jpeg, pg_url, t1_bgr, t1_faces  # noqa: F401 - fixtures

SOAK = int(os.environ.get("MARGINFACE_SOAK", "0") or 0)  # > 0: batches multiplied for a long soak


@pytest.fixture(scope="session")
def no_face_jpeg() -> bytes:
    """A smooth gradient: an image without any face."""
    ramp = np.linspace(0, 255, 240, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (200, 1))] * 3)
    return encode_jpeg(np.ascontiguousarray(image))


@pytest.fixture(scope="session")
def photos(t1_faces, no_face_jpeg) -> list[Photo]:  # noqa: F811 - the imported fixture
    """The six people of t1.jpg (identity 0..5, one JPEG crop each) and a photo without a face (-1)."""
    people = [Photo(i, face["crop"]) for i, face in enumerate(t1_faces)]
    assert cv2.imdecode(np.frombuffer(no_face_jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    return [*people, Photo(-1, no_face_jpeg)]

"""Trust test data: real faces (insightface's t1.jpg six people, scikit-image's astronaut, insightface's
Tom Hanks crop) and deterministic augmented variants of each (flip, brightness, rotation, scale, noise,
JPEG), written as ``root/<person>/*.jpg`` folders; the server fixtures come from tests/server."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.server import conftest as server

# the server fixtures, shared with tests/server (photos, stores, apps)
make_settings = server.make_settings
make_client = server.make_client
t1_bgr = server.t1_bgr
t1_faces = server.t1_faces
astronaut_jpeg = server.astronaut_jpeg
encode_jpeg = server.encode_jpeg
jpeg_file = server.jpeg_file
pg_url = server.pg_url


def augment(image: np.ndarray, k: int) -> np.ndarray:
    """Variant ``k`` (0 = the original) of a face photo: a different, deterministic transformation each."""
    h, w = image.shape[:2]
    ops = [
        lambda im: im,
        lambda im: im[:, ::-1],
        lambda im: cv2.convertScaleAbs(im, alpha=0.65, beta=0),
        lambda im: cv2.convertScaleAbs(im, alpha=1.3, beta=10),
        lambda im: cv2.warpAffine(
            im, cv2.getRotationMatrix2D((w / 2, h / 2), 8, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
        ),
        lambda im: cv2.warpAffine(
            im, cv2.getRotationMatrix2D((w / 2, h / 2), -8, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
        ),
        lambda im: cv2.resize(im, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA),
        lambda im: cv2.resize(im, None, fx=1.4, fy=1.4, interpolation=cv2.INTER_CUBIC),
        lambda im: np.clip(im + np.random.default_rng(k).normal(0, 8, im.shape), 0, 255).astype(np.uint8),
        lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], 1),
        lambda im: cv2.GaussianBlur(im, (0, 0), 1.0),
        lambda im: cv2.convertScaleAbs(im[:, ::-1], alpha=0.8, beta=20),
    ]
    return np.ascontiguousarray(ops[k % len(ops)](image))


VARIANTS = 12


@pytest.fixture(scope="session")
def people(t1_faces, astronaut_bgr, aligned_crop_path) -> dict[str, np.ndarray]:
    """Eight real people, one BGR photo each (face with margin): t1_0..t1_5, astronaut, hanks."""
    out = {f"t1_{i}": cv2.imdecode(np.frombuffer(f["crop"], np.uint8), 1) for i, f in enumerate(t1_faces)}
    out["astronaut"] = astronaut_bgr[0:260, 100:330]
    hanks = cv2.imread(str(aligned_crop_path))
    out["hanks"] = cv2.copyMakeBorder(hanks, 56, 56, 56, 56, cv2.BORDER_REPLICATE)
    return out


@pytest.fixture(scope="session")
def photo_root(people, tmp_path_factory) -> Path:
    """root/<person>/<k>.jpg with VARIANTS augmented photos per person."""
    root = tmp_path_factory.mktemp("people")
    for name, image in people.items():
        (root / name).mkdir()
        for k in range(VARIANTS):
            cv2.imwrite(str(root / name / f"{k:02d}.jpg"), augment(image, k))
    return root


def photos(root: Path, name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((root / name).glob("*.jpg"))]

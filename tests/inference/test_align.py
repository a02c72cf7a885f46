"""Alignment parity with insightface's ``face_align.norm_crop`` (the reference users compare with)."""

from __future__ import annotations

import numpy as np
import pytest

from models.align import ARCFACE_TEMPLATE, estimate_norm, norm_crop
from models.errors import MarginFaceError

pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")
face_align = pytest.importorskip(
    "insightface.utils.face_align", reason="insightface is the alignment reference"
)


def assert_same_crop(ours: np.ndarray, reference: np.ndarray) -> None:
    diff = np.abs(ours.astype(int) - reference.astype(int))
    assert (diff <= 1).mean() >= 0.99, f"only {(diff <= 1).mean():.4f} of pixels within one grey level"


def test_matches_insightface_on_t1_faces_and_perturbations(t1_bgr, t1_faces):
    rng = np.random.default_rng(0)
    for face in t1_faces:
        for trial in range(6):
            landmarks = face.landmarks + (rng.normal(0, 3, (5, 2)) if trial else 0)
            landmarks = landmarks.astype(np.float32)
            reference = face_align.norm_crop(t1_bgr, landmarks)
            ours = norm_crop(t1_bgr, landmarks)
            assert ours.shape == (112, 112, 3) and ours.dtype == np.uint8
            assert_same_crop(ours, reference)
            assert np.allclose(estimate_norm(landmarks), face_align.estimate_norm(landmarks), atol=1e-5)


@pytest.mark.parametrize("size", [112, 224, 128, 256])
def test_template_scaling_matches_insightface(t1_bgr, t1_faces, size):
    landmarks = t1_faces[0].landmarks
    assert np.allclose(estimate_norm(landmarks, size), face_align.estimate_norm(landmarks, size), atol=1e-5)
    assert_same_crop(norm_crop(t1_bgr, landmarks, size), face_align.norm_crop(t1_bgr, landmarks, size))


def test_template_points_map_onto_themselves():
    matrix = estimate_norm(ARCFACE_TEMPLATE)
    assert np.allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-6)
    # A rotated, scaled and shifted copy of the template maps back exactly.
    angle, scale = np.deg2rad(25), 2.5
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = ARCFACE_TEMPLATE @ rot.T + [300, 120]
    mapped = np.c_[moved, np.ones(5)] @ estimate_norm(moved).T
    assert np.allclose(mapped, ARCFACE_TEMPLATE, atol=1e-4)


def test_border_is_black_and_bad_landmarks_rejected():
    image = np.full((50, 50, 3), 200, np.uint8)
    tiny = ARCFACE_TEMPLATE / 4 + 30  # a small face near the bottom-right corner: the crop runs off the image
    crop = norm_crop(image, tiny)
    assert crop[0, 0].tolist() == [200, 200, 200] and crop[-1, -1].tolist() == [0, 0, 0]
    with pytest.raises(MarginFaceError) as info:
        norm_crop(image, np.full((5, 2), np.nan))
    assert info.value.code == "bad_landmarks"
    with pytest.raises(MarginFaceError):
        estimate_norm(np.zeros((4, 2)))

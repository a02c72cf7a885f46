"""Detection on a reduced decode of a phone photo finds the faces full-resolution detection finds, with
boxes and landmarks mapped back to full-resolution coordinates and crops that embed the same."""

from __future__ import annotations

import math

import cv2
import numpy as np

from models.detectors.policy import DetectionPolicy, analyse_photo
from models.images import decode_image
from tests.throughput.conftest import PHONE, jpeg_bytes


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_reduced_decode_finds_the_same_faces_as_full_resolution(pipeline, t1_phone_jpeg):
    full_image = decode_image(t1_phone_jpeg)
    reference = pipeline.detect(full_image)  # the behaviour before: full decode, 640 canvas
    reference_embeddings = pipeline.embed_faces(full_image, reference)
    faces, crops, full = analyse_photo(pipeline, t1_phone_jpeg, DetectionPolicy())
    assert full == PHONE
    assert len(reference) == 6 and len(faces) == len(reference)
    embeddings = pipeline.embed_crops(crops)
    for face, embedding in zip(faces, embeddings, strict=True):
        ious = [_iou(face.box, ref.box) for ref in reference]
        best = int(np.argmax(ious))
        assert ious[best] > 0.9, ious
        width = reference[best].width
        assert np.abs(face.landmarks - reference[best].landmarks).max() < 0.05 * width
        assert float(embedding @ reference_embeddings[best]) > 0.9  # crops from the reduced pixels


def test_faces_are_reported_in_full_resolution_coordinates_with_exif_rotation(pipeline, t1_image_path):
    photo = cv2.imread(str(t1_image_path))
    big = cv2.resize(photo, (photo.shape[1] * 3, photo.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
    stored = np.ascontiguousarray(np.rot90(big, 1))  # stored rotated; EXIF 6 turns it upright
    data = jpeg_bytes(stored, exif_orientation=6)
    faces, _, full = analyse_photo(pipeline, data, DetectionPolicy(max_side=640, decode_factor=1.0))
    assert full == (big.shape[1], big.shape[0])
    reference = pipeline.detect(big)
    assert len(faces) == len(reference) == 6
    for face in faces:
        assert max(_iou(face.box, ref.box) for ref in reference) > 0.85
        assert 0 <= face.box[0] < face.box[2] <= full[0] + 5 and 0 <= face.box[1] < face.box[3] <= full[1] + 5


def test_min_face_policy_grows_the_canvas_for_small_faces(pipeline, t1_image_path):
    """t1 shrunk into a corner of a 12 MP frame (faces ~30 px): the 640 canvas misses them, a canvas
    sized for 24 px faces finds them."""
    small = cv2.resize(cv2.imread(str(t1_image_path)), (640, 443), interpolation=cv2.INTER_AREA)
    frame = np.full((PHONE[1], PHONE[0], 3), 128, np.uint8)
    frame[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    data = jpeg_bytes(frame)
    default, _, _ = analyse_photo(pipeline, data, DetectionPolicy())
    crowd = DetectionPolicy(min_face=24)
    assert crowd.canvas_side(*PHONE) == math.ceil(PHONE[0] * 16 / 24)
    faces, _, _ = analyse_photo(pipeline, data, crowd)
    assert len(default) < 6 <= len(faces)
    for face in faces:  # in full-resolution coordinates: inside the pasted region
        assert 190 <= face.box[0] and face.box[2] <= 200 + 640 + 10


def test_policy_sizes():
    policy = DetectionPolicy()
    assert policy.canvas_side(4032, 3024) == 640 and policy.decode_min_side(4032, 3024) == 1280
    assert policy.canvas_side(250, 250) == 640  # small photos keep the detector's canvas (upscaled)
    assert DetectionPolicy(decode_factor=0).decode_min_side(4032, 3024) is None
    assert DetectionPolicy(min_face=10).canvas_side(1000, 800) == 1000  # never past the photo
    assert DetectionPolicy(min_face=10).input_size(4032, 3024, decoded_side=2016) == (2016, 2016)

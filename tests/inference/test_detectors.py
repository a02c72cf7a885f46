"""Detectors: six faces in t1.jpg, parity with OpenCV's FaceDetectorYN and insightface's SCRFD, options."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.detectors import SCRFDDetector, YuNetDetector, nms
from models.errors import InvalidImageError
from models.onnx_session import create_session


def assert_six_faces(faces):
    assert len(faces) == 6
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.5
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert face.box.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert 60 < x2 - x1 < 160 and 60 < y2 - y1 < 180
        inside = (face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)
        inside &= (face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2)
        assert inside.all()
        left_eye, right_eye = face.landmarks[0], face.landmarks[1]
        assert left_eye[0] < right_eye[0]  # as seen in the image
        assert face.landmarks[2, 1] > max(left_eye[1], right_eye[1])  # nose below the eyes


def test_yunet_default_pack_finds_six_faces(pipeline, t1_bgr):
    assert isinstance(pipeline.detector, YuNetDetector)
    assert_six_faces(pipeline.detect(t1_bgr))


def test_yunet_matches_opencv_face_detector_yn(pipeline, t1_bgr):
    detector = pipeline.detector
    model = pipeline.pack_dir / pipeline.manifest.model("detector").file
    for image in (t1_bgr, cv2.resize(t1_bgr, (640, 480))):
        canvas, _, _ = detector.letterbox(image)
        reference = cv2.FaceDetectorYN.create(str(model), "", (canvas.shape[1], canvas.shape[0]), 0.6, 0.4)
        expected = reference.detect(canvas)[1]
        ours = detector.detect(canvas)
        assert len(ours) == len(expected) == 6
        expected = expected[np.argsort(-expected[:, -1])]
        for face, row in zip(ours, expected, strict=True):
            box = np.array([row[0], row[1], row[0] + row[2], row[1] + row[3]])
            assert np.abs(face.box - box).max() < 2.0
            assert np.abs(face.landmarks - row[4:14].reshape(5, 2)).max() < 2.0
            assert abs(face.score - row[-1]) < 1e-3


@pytest.mark.parametrize("name", ["scrfd_500m_bnkps.onnx", "scrfd_2.5g_bnkps.onnx"])
def test_scrfd_matches_insightface(shared_dir, t1_bgr, name):
    from insightface.model_zoo.scrfd import SCRFD

    path = shared_dir / "models" / name
    session, _ = create_session(path, ["cpu"])
    detector = SCRFDDetector(session)
    faces = detector.detect(t1_bgr)
    assert_six_faces(faces)
    reference = SCRFD(str(path))
    reference.prepare(-1, input_size=(640, 640))
    boxes, kps = reference.detect(t1_bgr, input_size=(640, 640))
    for face in faces:
        match = int(np.argmin(np.abs(boxes[:, :4] - face.box).sum(axis=1)))
        assert np.abs(boxes[match, :4] - face.box).max() < 1.0
        assert np.abs(kps[match] - face.landmarks).max() < 1.0
        assert abs(boxes[match, 4] - face.score) < 1e-3


def test_options_threshold_max_faces_min_size(pipeline, t1_bgr):
    faces = pipeline.detect(t1_bgr)
    largest_two = sorted(faces, key=lambda f: -f.area)[:2]
    kept = pipeline.detect(t1_bgr, max_faces=2)
    assert len(kept) == 2 and {round(f.area) for f in kept} == {round(f.area) for f in largest_two}
    assert kept[0].score >= kept[1].score
    smallest_side = min(min(f.width, f.height) for f in faces)
    assert len(pipeline.detect(t1_bgr, min_size=smallest_side + 0.01)) == 5
    assert pipeline.detect(t1_bgr, score_threshold=0.999) == []
    lowest = min(f.score for f in faces)
    assert len(pipeline.detect(t1_bgr, score_threshold=lowest + 1e-4)) == 5


def test_detections_scale_with_the_image(pipeline, t1_bgr):
    small = cv2.resize(t1_bgr, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    full = sorted(pipeline.detect(t1_bgr), key=lambda f: f.box[0])
    scaled = sorted(pipeline.detect(small), key=lambda f: f.box[0])
    assert len(scaled) == 6
    for a, b in zip(full, scaled, strict=True):
        assert np.abs(a.landmarks * 0.6 - b.landmarks).max() < 4.0


def test_no_face_and_tiny_images(pipeline):
    assert pipeline.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    assert pipeline.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert pipeline.detect(np.zeros((3000, 20, 3), np.uint8)) == []


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32), None],
)
def test_bad_arrays_are_rejected(pipeline, bad):
    with pytest.raises(InvalidImageError):
        pipeline.detect(bad)


def test_letterbox_fixed_and_dynamic(pipeline):
    detector = pipeline.detector
    canvas, sx, sy = detector.letterbox(np.zeros((480, 640, 3), np.uint8))
    assert canvas.shape == (480, 640, 3) and sx == sy == 1.0  # dynamic model: no square padding
    canvas, sx, sy = detector.letterbox(np.zeros((250, 250, 3), np.uint8))
    assert canvas.shape == (640, 640, 3) and sx == pytest.approx(640 / 250)
    canvas, _, _ = detector.letterbox(np.zeros((886, 1280, 3), np.uint8))
    assert canvas.shape[1] == 640 and canvas.shape[0] % 32 == 0


def test_nms_suppresses_overlaps_only():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0,1) = 81/119 = 0.68 > 0.4; IoU(3,0) = 0.5 > 0.4; box 2 is apart.
    assert nms(boxes, scores, 0.4).tolist() == [3, 1, 2]
    assert nms(boxes, scores, 0.6).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 0, 1, 2]

"""Shared detector machinery: input canvas (letterbox at top-left), session run, NMS and filters."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import cv2
import numpy as np

from models.errors import InvalidImageError
from models.face import Face

DEFAULT_NMS_IOU = 0.4
DEFAULT_CANVAS = (640, 640)  # (w, h) for models that take any size: the image is fitted inside it


class Detector(ABC):
    """A face detector running an ONNX Runtime session.

    Models with a fixed input get the image resized (aspect kept) and padded at the bottom/right to that
    size. Models that take any size get the image fitted inside ``input_size`` (default 640×640, upscaling
    small images as insightface does) and padded only up to the next multiple of 32, so a 640×480 image
    costs a 640×480 forward pass.
    """

    default_score_threshold = 0.5
    needs_rgb = True

    def __init__(
        self,
        session,
        *,
        providers: list[str] | None = None,
        input_size: tuple[int, int] | None = None,
        score_threshold: float | None = None,
        nms_threshold: float = DEFAULT_NMS_IOU,
        max_faces: int | None = None,
        min_size: float | None = None,
    ) -> None:
        self.session = session
        self.providers = list(providers or session.get_providers())
        model_input = session.get_inputs()[0]
        self.input_name = model_input.name
        height, width = model_input.shape[2], model_input.shape[3]
        self.fixed_input = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        if self.fixed_input is not None and input_size is not None and tuple(input_size) != self.fixed_input:
            raise ValueError(f"the model takes a fixed {self.fixed_input} input, not {tuple(input_size)}")
        self.input_size = tuple(self.fixed_input or input_size or DEFAULT_CANVAS)
        self.score_threshold = self.default_score_threshold if score_threshold is None else score_threshold
        self.nms_threshold = nms_threshold
        self.max_faces = max_faces
        self.min_size = min_size
        self.output_names = [o.name for o in session.get_outputs()]

    def detect(
        self,
        image_bgr: np.ndarray,
        *,
        score_threshold: float | None = None,
        max_faces: int | None = None,
        min_size: float | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> list[Face]:
        """Faces in ``image_bgr`` (H×W×3 uint8), sorted by score, highest first.

        ``max_faces`` keeps the largest faces (by box area); ``min_size`` drops faces whose box is narrower
        or shorter than that many pixels. ``input_size`` (w, h) replaces the canvas the image is fitted
        into for this call (models that take any size; see models/detectors/policy.py).
        """
        _check_image(image_bgr)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        max_faces = self.max_faces if max_faces is None else max_faces
        min_size = self.min_size if min_size is None else min_size
        canvas, scale_x, scale_y = self.letterbox(image_bgr, input_size)
        outputs = self.session.run(self.output_names, {self.input_name: self.make_blob(canvas)})
        boxes, scores, landmarks = self.decode(outputs, canvas.shape[0], canvas.shape[1], threshold)
        if len(scores) == 0:
            return []
        scale = np.array([scale_x, scale_y], dtype=np.float32)
        boxes = boxes / np.tile(scale, 2)
        landmarks = landmarks / scale
        keep = nms(boxes, scores, self.nms_threshold)
        boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
        if min_size:
            sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            ok = sides >= min_size
            boxes, scores, landmarks = boxes[ok], scores[ok], landmarks[ok]
        if max_faces is not None and len(scores) > max_faces:
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            largest = np.sort(np.argsort(-areas, kind="stable")[: max(int(max_faces), 0)])
            boxes, scores, landmarks = boxes[largest], scores[largest], landmarks[largest]
        order = np.argsort(-scores, kind="stable")
        return [
            Face(
                box=boxes[i].astype(np.float32),
                score=float(scores[i]),
                landmarks=landmarks[i].astype(np.float32),
            )
            for i in order
        ]

    def canvas_size(
        self, height: int, width: int, input_size: tuple[int, int] | None = None
    ) -> tuple[int, int, float]:
        """(canvas_w, canvas_h, scale) for an image of ``height``×``width``."""
        target_w, target_h = self.input_size if input_size is None or self.fixed_input else input_size
        scale = min(target_w / width, target_h / height)
        if self.fixed_input is not None:
            return target_w, target_h, scale
        new_w, new_h = max(int(width * scale), 1), max(int(height * scale), 1)
        return _ceil32(new_w), _ceil32(new_h), scale

    def letterbox(
        self, image: np.ndarray, input_size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, float, float]:
        """The image resized (aspect kept) into the top-left of a black canvas, and the x/y scales."""
        height, width = image.shape[:2]
        canvas_w, canvas_h, scale = self.canvas_size(height, width, input_size)
        new_w = min(max(int(width * scale), 1), canvas_w)
        new_h = min(max(int(height * scale), 1), canvas_h)
        if (new_w, new_h) == (width, height):
            resized = image
        else:
            resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if (new_w, new_h) == (canvas_w, canvas_h):
            canvas = np.ascontiguousarray(resized)
        else:
            canvas = np.zeros((canvas_h, canvas_w, 3), dtype=np.uint8)
            canvas[:new_h, :new_w] = resized
        return canvas, new_w / width, new_h / height

    @abstractmethod
    def make_blob(self, canvas_bgr: np.ndarray) -> np.ndarray:
        """The 1×3×H×W float32 network input for a padded canvas."""

    @abstractmethod
    def decode(
        self, outputs: list[np.ndarray], height: int, width: int, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes N×4, scores N, landmarks N×5×2 in canvas pixels for candidates at or above threshold."""


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes in descending score order."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def hwc_to_nchw_float(image: np.ndarray) -> np.ndarray:
    """H×W×C uint8 (any strides) to a new 1×C×H×W float32 array in one pass."""
    blob = np.empty((1, image.shape[2], image.shape[0], image.shape[1]), dtype=np.float32)
    np.copyto(blob[0], image.transpose(2, 0, 1), casting="unsafe")
    return blob


def _ceil32(value: int) -> int:
    return int(math.ceil(value / 32) * 32)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InvalidImageError(f"expected an H×W×3 uint8 BGR image, got {shape} {dtype}", code="bad_image")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImageError("the image has no pixels", code="bad_image")

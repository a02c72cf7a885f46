"""Detection that costs what the photo needs: the detection canvas and the JPEG decode scale per photo.

A face detector sees the photo fitted into a canvas of ``max_side`` pixels (640 by default, as before).
That finds faces down to about ``DETECTABLE_PX`` canvas pixels, i.e. faces of ``L × 16 / 640`` pixels in a
photo whose longer side is L (100 px in a 4032×3024 phone photo). When smaller faces matter (a crowd),
``min_face`` grows the canvas so that faces of that many photo pixels are still detectable.

The photo itself is decoded (JPEG only, libjpeg's DCT scaling) at the smallest 1/2, 1/4 or 1/8 scale whose
longer side stays at least ``decode_factor`` × the canvas side: every detectable face then keeps at least
that many times its canvas resolution for alignment. Boxes and landmarks are mapped back to the photo's
full-resolution coordinates (``to_full_resolution``). ``decode_factor = 0`` decodes at full size.

Environment: ``MARGINFACE_DETECT_MAX_SIDE``, ``MARGINFACE_DETECT_MIN_FACE``, ``MARGINFACE_DECODE_FACTOR``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from models.face import Face
from models.images import MemoryBudget, decoding_reduced

DETECTABLE_PX = 16  # faces below ~16 canvas pixels are missed by YuNet/SCRFD at their default thresholds


@dataclass(frozen=True)
class DetectionPolicy:
    """``max_side``: detection canvas side; ``min_face``: photo pixels a face must be detectable at
    (None: what ``max_side`` gives); ``decode_factor``: decoded side ≥ this × canvas side (0: full)."""

    max_side: int = 640
    min_face: int | None = None
    decode_factor: float = 2.0

    @classmethod
    def from_env(cls) -> DetectionPolicy:
        def number(name: str, default, cast):
            value = os.environ.get(name, "").strip()
            return cast(value) if value else default

        return cls(
            max_side=number("MARGINFACE_DETECT_MAX_SIDE", 640, int),
            min_face=number("MARGINFACE_DETECT_MIN_FACE", None, int),
            decode_factor=number("MARGINFACE_DECODE_FACTOR", 2.0, float),
        )

    def canvas_side(self, width: int, height: int) -> int:
        """The detection canvas's longer side for a photo of ``width``×``height`` (full resolution)."""
        longest = max(width, height)
        side = self.max_side
        if self.min_face:
            side = max(side, math.ceil(longest * DETECTABLE_PX / self.min_face))
        return int(min(side, max(longest, self.max_side)))

    def input_size(self, width: int, height: int, decoded_side: int | None = None) -> tuple[int, int]:
        """The (w, h) canvas to pass to ``Detector.detect`` (square: the photo is fitted inside it); a canvas
        grown past ``max_side`` never exceeds the decoded image's longer side ``decoded_side``."""
        side = self.canvas_side(width, height)
        if decoded_side and side > self.max_side:
            side = max(self.max_side, min(side, decoded_side))
        return side, side

    def decode_min_side(self, width: int, height: int) -> int | None:
        """The longer side a reduced JPEG decode must keep (None: decode at full size)."""
        if self.decode_factor <= 0:
            return None
        return int(math.ceil(self.decode_factor * self.canvas_side(width, height)))


def to_full_resolution(faces: list[Face], decoded: tuple[int, int], full: tuple[int, int]) -> list[Face]:
    """Scale boxes and landmarks found on a ``decoded`` (w, h) image to the ``full`` (w, h) photo."""
    if tuple(decoded) == tuple(full):
        return faces
    sx, sy = full[0] / decoded[0], full[1] / decoded[1]
    scale = np.array([sx, sy], dtype=np.float32)
    for face in faces:
        face.box = (np.asarray(face.box, np.float32) * np.tile(scale, 2)).astype(np.float32)
        face.landmarks = (np.asarray(face.landmarks, np.float32) * scale).astype(np.float32)
    return faces


def analyse_photo(
    pipeline,
    data: bytes,
    policy: DetectionPolicy,
    *,
    max_faces: int | None = None,
    budget: MemoryBudget | None = None,
    **limits,
) -> tuple[list[Face], np.ndarray, tuple[int, int]]:
    """Decode (reduced when the policy allows), detect on the policy's canvas, align on the decoded
    pixels; returns (faces in full-resolution coordinates, aligned crops, full (w, h))."""
    with decoding_reduced(data, min_side=policy.decode_min_side, budget=budget, **limits) as (image, full):
        decoded = (int(image.shape[1]), int(image.shape[0]))
        size = policy.input_size(*full, decoded_side=max(decoded))
        faces = pipeline.detect(image, max_faces=max_faces, input_size=size)
        crops = pipeline.align(image, faces)
    return to_full_resolution(faces, decoded, full), crops, full

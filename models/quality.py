"""Face quality from what the pipeline already has: box, five landmarks, detector score, aligned crop.

Pose is estimated geometrically from the five landmarks (no extra model): roll is the angle of the eye
line; yaw comes from where the nose tip sits between the eyes (a nose tip as far in front of the eye
line as the eyes are from their midpoint), pitch from where it sits between the eye line and the mouth
line, compared with the frontal ArcFace template. These are coarse (±10°) but
separate frontal, three-quarter and profile faces reliably, which is what the enrollment policy needs.
Sharpness is the variance of the Laplacian of the grey aligned crop (same 112×112 scale for every face,
so the number is comparable between photos of different resolutions).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

# Frontal template (protocols.md): nose position relative to eyes and mouth.
_T_EYE_Y = (51.6963 + 51.5014) / 2
_T_MOUTH_Y = (92.3655 + 92.2041) / 2
_T_NOSE_Y = 71.7366
PITCH_REF = (_T_NOSE_Y - _T_EYE_Y) / (_T_MOUTH_Y - _T_EYE_Y)  # ≈ 0.494 for a frontal face


@dataclass
class FaceQuality:
    """Quality record of one detected face (all fields JSON-ready)."""

    size_px: float  # shorter side of the detection box, in image pixels
    sharpness: float  # variance of the Laplacian of the grey 112×112 aligned crop
    yaw: float  # degrees, + = face turned towards the image's right
    pitch: float  # degrees, + = face tilted down (nose towards the mouth line)
    roll: float  # degrees, in-plane rotation of the eye line
    det_score: float
    recognisability: float | None = None  # feature norm where the pack provides one (MagFace/AdaFace)

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 5×2 landmarks (left eye, right eye, nose, mouth left, right)."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    le, re_, nose, ml, mr = pts
    dx, dy = re_ - le
    roll = math.degrees(math.atan2(dy, dx))
    # undo roll around the eye midpoint so yaw/pitch are measured in the face's own frame
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]])
    mid = (le + re_) / 2
    p = (pts - mid) @ rot.T
    le, re_, nose, ml, mr = p
    eye_span = max(re_[0] - le[0], 1e-6)
    # Nose tip between the eyes: 0.5 when frontal. With the eyes at ±e and the nose tip d in front of
    # them, turning by yaw θ puts it at 0.5 + (d / 2e)·tan θ; d ≈ e for adult faces, so
    # tan θ = 2·(ratio − 0.5). A profile pushes the nose past the far eye (ratio < 0 or > 1).
    ratio = (nose[0] - le[0]) / eye_span
    yaw = math.degrees(math.atan(2 * (ratio - 0.5)))
    mouth_y = (ml[1] + mr[1]) / 2
    eye_y = (le[1] + re_[1]) / 2
    span = mouth_y - eye_y
    if span <= 1e-6:
        pitch = 90.0
    else:
        ratio_y = (nose[1] - eye_y) / span
        pitch = math.degrees(math.asin(float(np.clip((ratio_y - PITCH_REF) * 2, -1, 1))))
    return float(yaw), float(pitch), float(roll)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of an aligned BGR crop (higher = sharper), over the face's interior.

    Pixels of the black border that alignment adds where the face leaves the image are left out (they
    would make a blurred face at the image edge look sharp)."""
    crop = np.ascontiguousarray(crop)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    inside = (crop.max(axis=2) if crop.ndim == 3 else crop) > 0
    valid = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    h, w = grey.shape
    m = max(h // 14, 1)
    valid[:m], valid[-m:], valid[:, :m], valid[:, -m:] = False, False, False, False
    values = lap[valid]
    return float(values.var()) if values.size >= 0.1 * h * w else 0.0


def assess(face, crop: np.ndarray, recognisability: float | None = None) -> FaceQuality:
    """Quality record of one detected ``models.face.Face`` and its aligned crop."""
    yaw, pitch, roll = pose_from_landmarks(face.landmarks)
    return FaceQuality(
        size_px=float(min(face.width, face.height)),
        sharpness=sharpness(crop),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        det_score=float(face.score),
        recognisability=recognisability,
    )

"""The detected-face record shared by detectors, the pipeline, the CLI and the server."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face in image pixel coordinates.

    ``box`` is [x1, y1, x2, y2] float32, ``landmarks`` is 5×2 float32 (left eye, right eye, nose,
    left mouth corner, right mouth corner, as seen in the image), ``score`` the detector confidence.
    ``embedding`` is filled by the pipeline (L2-normalised float32) when requested.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def to_dict(self) -> dict:
        """JSON-ready form: box, landmarks (5 × [x, y]) and score, rounded for readability."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "score": round(float(self.score), 4),
        }

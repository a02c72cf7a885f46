"""SCRFD (insightface) decoding: strides 8/16/32 (or 8..128), distances × stride from anchor centres."""

from __future__ import annotations

import numpy as np

from models.detectors.base import Detector, hwc_to_nchw_float

_LEVELS = {6: (3, False), 9: (3, True), 10: (5, False), 15: (5, True)}
_STRIDES = (8, 16, 32, 64, 128)


class SCRFDDetector(Detector):
    """insightface SCRFD with RGB (x − 127.5)/128 input, letterboxed at the top-left.

    Output heads are grouped by their last dimension (1 score, 4 box, 10 landmark values) and matched to
    strides by their number of rows, so any output order works. Models without landmark heads (6 or 10
    outputs) return NaN landmarks: they can detect but not align.
    """

    default_score_threshold = 0.5

    def __init__(self, session, **options) -> None:
        super().__init__(session, **options)
        count = len(self.output_names)
        if count not in _LEVELS:
            raise ValueError(f"an SCRFD model has 6, 9, 10 or 15 outputs, this one has {count}")
        self.num_levels, self.has_landmarks = _LEVELS[count]
        self.strides = _STRIDES[: self.num_levels]
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def make_blob(self, canvas_bgr: np.ndarray) -> np.ndarray:
        blob = hwc_to_nchw_float(canvas_bgr[:, :, ::-1])  # RGB
        blob -= 127.5
        blob *= 1.0 / 128.0
        return blob

    def decode(self, outputs, height, width, threshold):
        groups: dict[int, list[np.ndarray]] = {1: [], 4: [], 10: []}
        for out in outputs:
            flat = out.reshape(-1, out.shape[-1])
            groups.setdefault(flat.shape[1], []).append(flat)
        for key in groups:
            groups[key].sort(key=lambda a: -a.shape[0])  # stride 8 has the most anchors
        all_boxes, all_scores, all_kps = [], [], []
        for level, stride in enumerate(self.strides):
            scores = groups[1][level][:, 0]
            rows, cols = height // stride, width // stride
            anchors = scores.shape[0] // (rows * cols)
            if anchors * rows * cols != scores.shape[0]:
                raise ValueError(
                    f"SCRFD stride {stride}: {scores.shape[0]} rows do not fit a {cols}×{rows} grid"
                )
            idx = np.nonzero(scores >= threshold)[0]
            if idx.size == 0:
                continue
            cell = idx // anchors
            centres = np.stack([(cell % cols) * stride, (cell // cols) * stride], axis=1).astype(np.float32)
            dist = groups[4][level][idx] * stride
            all_boxes.append(np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1))
            all_scores.append(scores[idx])
            if self.has_landmarks:
                kps = groups[10][level][idx].reshape(-1, 5, 2) * stride + centres[:, None, :]
            else:
                kps = np.full((idx.size, 5, 2), np.nan, dtype=np.float32)
            all_kps.append(kps)
        if not all_scores:
            empty = np.zeros((0,), np.float32)
            return np.zeros((0, 4), np.float32), empty, np.zeros((0, 5, 2), np.float32)
        return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)

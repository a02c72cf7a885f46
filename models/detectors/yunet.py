"""YuNet (OpenCV zoo, 2023mar layout) decoding: cls/obj/bbox/kps heads per stride 8/16/32."""

from __future__ import annotations

import numpy as np

from models.detectors.base import Detector, hwc_to_nchw_float

_STRIDES = (8, 16, 32)
_HEADS = ("cls", "obj", "bbox", "kps")


class YuNetDetector(Detector):
    """YuNet with BGR 0..255 input, H and W multiples of 32 (the canvas is padded at the bottom/right).

    score = sqrt(clip(cls)·clip(obj)); box centre = (col + dx, row + dy)·stride, size = exp(dw, dh)·stride;
    landmarks = (col + lx, row + ly)·stride — the same decoding as OpenCV's ``FaceDetectorYN``. The default
    score threshold is 0.6, the value of OpenCV zoo's YuNet wrapper (its demo uses 0.9).
    """

    default_score_threshold = 0.6

    def __init__(self, session, **options) -> None:
        super().__init__(session, **options)
        names = self.output_names
        if len(names) != 12:
            raise ValueError(
                f"a YuNet model has 12 outputs (cls/obj/bbox/kps × 3 strides), this one has {len(names)}"
            )
        by_name = {f"{head}_{stride}" for head in _HEADS for stride in _STRIDES}
        if set(names) == by_name:
            self._index = {key: names.index(key) for key in by_name}
        else:  # exported without names: OpenCV's order is heads-major, strides-minor
            self._index = {
                f"{h}_{s}": i * 3 + j for i, h in enumerate(_HEADS) for j, s in enumerate(_STRIDES)
            }

    def make_blob(self, canvas_bgr: np.ndarray) -> np.ndarray:
        return hwc_to_nchw_float(canvas_bgr)

    def decode(self, outputs, height, width, threshold):
        all_boxes, all_scores, all_kps = [], [], []
        for stride in _STRIDES:
            cls = outputs[self._index[f"cls_{stride}"]].reshape(-1)
            obj = outputs[self._index[f"obj_{stride}"]].reshape(-1)
            scores = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            idx = np.nonzero(scores >= threshold)[0]
            if idx.size == 0:
                continue
            cols = width // stride
            cell = np.stack([idx % cols, idx // cols], axis=1).astype(np.float32)
            bbox = outputs[self._index[f"bbox_{stride}"]].reshape(-1, 4)[idx]
            centre = (cell + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:]) * stride
            all_boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            kps = outputs[self._index[f"kps_{stride}"]].reshape(-1, 5, 2)[idx]
            all_kps.append((kps + cell[:, None, :]) * stride)
            all_scores.append(scores[idx])
        if not all_scores:
            empty = np.zeros((0,), np.float32)
            return np.zeros((0, 4), np.float32), empty, np.zeros((0, 5, 2), np.float32)
        return np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_kps)

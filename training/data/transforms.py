"""Training/evaluation transforms on H×W×3 uint8 RGB arrays (no torchvision).

Random transforms draw from NumPy's global generator; ``build_train_loader`` reseeds it per sample
from (seed, epoch, index) so the augmentation stream is reproducible whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

Transform = Callable[[np.ndarray], object]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, image: np.ndarray) -> object:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class RandomHorizontalFlip:
    """Mirror the image left↔right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if np.random.random() < self.p:
            return np.ascontiguousarray(image[:, ::-1])
        return image

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ToNormalizedTensor:
    """H×W×3 uint8 RGB → 3×H×W float32 tensor in [−1, 1]: (x − 127.5) / 127.5 (insightface's ArcFace)."""

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 uint8 image, got {image.dtype} {image.shape}")
        # NumPy, not torch ops: per-sample torch kernels pay thread start-up costs in every worker
        chw = image.transpose(2, 0, 1).astype(np.float32)
        chw -= 127.5
        chw /= 127.5
        return torch.from_numpy(chw)

    def __repr__(self) -> str:
        return "ToNormalizedTensor()"


def build_transform(train: bool = True, flip_p: float = 0.5) -> Compose:
    """The standard recipe: random horizontal flip (training only) → RGB in [−1, 1]."""
    steps: list[Transform] = [RandomHorizontalFlip(flip_p)] if train and flip_p > 0 else []
    return Compose([*steps, ToNormalizedTensor()])

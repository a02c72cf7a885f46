"""``root/<identity>/*.jpg|png`` folders of aligned 112×112 crops as a labelled dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from training.data.errors import DatasetError
from training.data.images import IMAGE_EXTENSIONS, read_crop_rgb
from training.data.transforms import Transform, build_transform


def scan_identity_folders(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Classes (sorted folder names that hold at least one image) and (path, label) samples, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}", "dataset_not_found")
    classes: list[str] = []
    samples: list[tuple[Path, int]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            continue
        label = len(classes)
        classes.append(folder.name)
        samples.extend((path, label) for path in files)
    if not samples:
        raise DatasetError(
            f"{root}: no images found; expected root/<identity>/<image>.jpg|png", "empty_dataset"
        )
    return classes, samples


class ImageFolderDataset(Dataset):
    """Aligned crops in ``root/<identity>/`` → ``(3×112×112 float32 RGB in [−1, 1], label)``.

    Labels are indices into ``classes`` (identity folders sorted by name; folders without images are
    left out). Images must be 112×112 (``wrong_image_size`` otherwise; checked when an image is read).
    ``transform`` maps the H×W×3 uint8 RGB array to the returned tensor (default: normalise only).
    """

    def __init__(self, root: str | Path, transform: Transform | None = None):
        self.root = Path(root)
        self.classes, self.samples = scan_identity_folders(self.root)
        self.targets = np.array([label for _, label in self.samples], dtype=np.int64)
        self.transform = transform if transform is not None else build_transform(train=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        return self.transform(read_crop_rgb(path)), label

    def __repr__(self) -> str:
        return f"ImageFolderDataset({str(self.root)!r}, images={len(self)}, classes={self.num_classes})"

"""ImageFolderDataset and the transforms on real crops written to disk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.data import (
    DatasetError,
    ImageFolderDataset,
    RandomHorizontalFlip,
    ToNormalizedTensor,
    build_transform,
)


def test_folder_dataset_classes_labels_and_tensors(identity_folder: Path):
    ds = ImageFolderDataset(identity_folder)
    assert ds.classes == ["adam", "bob", "mia", "zoe"]  # sorted; the empty folder is left out
    assert ds.num_classes == 4 and len(ds) == 12
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    image, label = ds[4]
    assert label == 1 and isinstance(label, int)
    assert image.shape == (3, 112, 112) and image.dtype == torch.float32
    assert -1.0 <= image.min() < 0 < image.max() <= 1.0
    # RGB order and (x − 127.5) / 127.5, checked against an independent OpenCV read of the same file
    bgr = cv2.imread(str(identity_folder / "bob" / "1.png"))
    expected = (bgr[:, :, ::-1].astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_folder_dataset_refuses_bad_input(identity_folder: Path, tmp_path: Path):
    with pytest.raises(DatasetError) as info:
        ImageFolderDataset(tmp_path / "nope")
    assert info.value.code == "dataset_not_found"
    (tmp_path / "empty_root" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError) as info:
        ImageFolderDataset(tmp_path / "empty_root")
    assert info.value.code == "empty_dataset"
    cv2.imwrite(str(identity_folder / "adam" / "3_big.jpg"), np.zeros((250, 250, 3), np.uint8))
    (identity_folder / "bob" / "9_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    ds = ImageFolderDataset(identity_folder)
    with pytest.raises(DatasetError) as info:
        ds[ds.samples.index((identity_folder / "adam" / "3_big.jpg", 0))]
    assert info.value.code == "wrong_image_size" and "marginface data align" in str(info.value)
    with pytest.raises(DatasetError) as info:
        ds[ds.samples.index((identity_folder / "bob" / "9_broken.jpg", 1))]
    assert info.value.code == "corrupt_image"


def test_transforms(real_crops):
    rgb = np.ascontiguousarray(real_crops[0][:, :, ::-1])
    assert np.array_equal(RandomHorizontalFlip(1.0)(rgb), rgb[:, ::-1])
    assert RandomHorizontalFlip(0.0)(rgb) is rgb
    np.random.seed(0)
    flips = [RandomHorizontalFlip(0.5)(rgb) is not rgb for _ in range(200)]
    assert 70 < sum(flips) < 130
    extremes = np.zeros((2, 2, 3), np.uint8)
    extremes[1] = 255
    tensor = ToNormalizedTensor()(extremes)
    assert tensor.shape == (3, 2, 2)
    assert torch.equal(tensor[:, 0], -torch.ones(3, 2)) and torch.equal(tensor[:, 1], torch.ones(3, 2))
    with pytest.raises(ValueError):
        ToNormalizedTensor()(rgb.astype(np.float32))
    assert "Flip" not in repr(build_transform(train=False)) and "Flip" in repr(build_transform(train=True))

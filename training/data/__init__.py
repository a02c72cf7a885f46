"""Training data: identity folders and insightface RecordIO datasets, verification .bin files,
transforms (no torchvision) and a reproducible training loader.

Names are imported lazily, so that ``training.data.align`` workers do not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetError": "errors",
    "ImageFolderDataset": "folder",
    "EpochSampler": "loader",
    "TrainLoader": "loader",
    "build_train_loader": "loader",
    "IRHeader": "recordio",
    "pack_record": "recordio",
    "read_index": "recordio",
    "unpack_record": "recordio",
    "write_recordio": "recordio",
    "RecordIODataset": "recordio_dataset",
    "Compose": "transforms",
    "RandomHorizontalFlip": "transforms",
    "ToNormalizedTensor": "transforms",
    "build_transform": "transforms",
    "load_bin_raw": "verification_bin",
    "read_bin": "verification_bin",
    "write_bin": "verification_bin",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'training.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"training.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

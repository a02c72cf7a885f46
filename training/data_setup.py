"""The training dataset a config names, built from ``training.data`` (folder of identities or RecordIO).

Random flips are NOT done here: the trainer flips whole batches with a seeded mask so that the data
stream is identical across process counts and after a resume.
"""

from __future__ import annotations

from typing import Any

from training.config import ConfigError, TrainConfig


def build_dataset(cfg: TrainConfig) -> Any:
    from training.data.transforms import build_transform

    transform = build_transform(train=False)
    try:
        if cfg.data.kind == "folder":
            from training.data.folder import ImageFolderDataset

            return ImageFolderDataset(cfg.data.root, transform)
        from training.data import RecordIODataset

        return RecordIODataset(cfg.data.rec, cfg.data.idx, transform)
    except FileNotFoundError as exc:
        raise ConfigError(f"training data not found: {exc}", "data_not_found") from exc


def dataset_num_classes(dataset: Any) -> int:
    for attr in ("num_classes", "classes"):
        value = getattr(dataset, attr, None)
        if value is not None:
            return value if isinstance(value, int) else len(value)
    raise ConfigError("cannot infer the number of classes from the dataset; set data.num_classes")

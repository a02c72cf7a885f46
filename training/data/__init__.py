"""Training data: identity folders and insightface RecordIO datasets, verification .bin files,
transforms (no torchvision) and a reproducible training loader."""

from training.data.errors import DatasetError
from training.data.folder import ImageFolderDataset
from training.data.loader import EpochSampler, TrainLoader, build_train_loader
from training.data.recordio import IRHeader, pack_record, read_index, unpack_record, write_recordio
from training.data.recordio_dataset import RecordIODataset
from training.data.transforms import Compose, RandomHorizontalFlip, ToNormalizedTensor, build_transform
from training.data.verification_bin import load_bin_raw, read_bin, write_bin

__all__ = [
    "Compose",
    "DatasetError",
    "EpochSampler",
    "IRHeader",
    "ImageFolderDataset",
    "RandomHorizontalFlip",
    "RecordIODataset",
    "ToNormalizedTensor",
    "TrainLoader",
    "build_train_loader",
    "build_transform",
    "load_bin_raw",
    "pack_record",
    "read_bin",
    "read_index",
    "unpack_record",
    "write_bin",
    "write_recordio",
]

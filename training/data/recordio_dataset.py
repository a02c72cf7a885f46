"""insightface ``train.rec``/``train.idx`` (MS1MV3, Glint360K, …) as a labelled dataset, without MXNet."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from torch.utils.data import Dataset

from training.data.errors import DatasetError
from training.data.images import check_crop, decode_bgr
from training.data.recordio import IR_FORMAT, IR_SIZE, RecordIndex, read_framed, unpack_record
from training.data.transforms import Transform, build_transform


def _label_of(label: float | np.ndarray) -> int:
    return int(label if np.isscalar(label) else label[0])


class RecordIODataset(Dataset):
    """Records of an insightface RecordIO pair → ``(3×112×112 float32 RGB in [−1, 1], label)``.

    With insightface's record 0 (flag > 0, label = identity key range) the images are keys 1..N and
    ``num_classes`` comes from that range; otherwise every key of the index is an image and classes are
    counted from the labels. The file is opened lazily in each process (safe with DataLoader workers).
    """

    def __init__(
        self, rec_path: str | Path, idx_path: str | Path | None = None, transform: Transform | None = None
    ):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else self.rec_path.with_suffix(".idx")
        if not self.rec_path.is_file():
            raise DatasetError(f"RecordIO file not found: {self.rec_path}", "dataset_not_found")
        self.index = RecordIndex.load(self.idx_path)
        if not len(self.index):
            raise DatasetError(f"{self.idx_path}: the index is empty", "empty_dataset")
        self.transform = transform if transform is not None else build_transform(train=False)
        self._handle: BinaryIO | None = None
        self._pid = -1
        self._targets: np.ndarray | None = None
        self._num_classes: int | None = None
        header0 = unpack_record(self._read(0), f"{self.rec_path} record 0")[0] if 0 in self.index else None
        if header0 is not None and header0.flag > 0:
            first_identity, end_identity = (int(v) for v in np.asarray(header0.label)[:2])
            self.keys: range | np.ndarray = range(1, first_identity)
            self._num_classes = end_identity - first_identity
            missing = [k for k in {1, first_identity - 1} if first_identity > 1 and k not in self.index]
            if missing:
                raise DatasetError(f"{self.idx_path}: record 0 names absent keys {missing}", "bad_recordio")
        else:
            self.keys = self.index.keys
        self.close()  # workers forked from here open their own handle
        if not len(self.keys):
            raise DatasetError(f"{self.rec_path}: holds no image records", "empty_dataset")

    def _file(self) -> BinaryIO:
        if self._handle is None or self._pid != os.getpid():  # a forked worker opens its own handle
            self._handle = open(self.rec_path, "rb")  # noqa: SIM115 - lives as long as the dataset
            self._pid = os.getpid()
        return self._handle

    def _read(self, key: int) -> bytes:
        offset = self.index.offset(key)
        if offset is None:
            raise DatasetError(f"{self.idx_path}: key {key} is not in the index", "bad_recordio")
        return read_framed(self._file(), offset, str(self.rec_path))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"], state["_pid"] = None, -1
        return state

    def __len__(self) -> int:
        return len(self.keys)

    def read_raw(self, index: int) -> tuple[bytes, int]:
        """The encoded image bytes and label of sample ``index``."""
        key = int(self.keys[index])
        header, payload = unpack_record(self._read(key), f"{self.rec_path} key {key}")
        return payload, _label_of(header.label)

    def __getitem__(self, index: int):
        payload, label = self.read_raw(index)
        source = f"{self.rec_path} key {self.keys[index]}"
        rgb = cv2.cvtColor(check_crop(decode_bgr(payload, source), source), cv2.COLOR_BGR2RGB)
        return self.transform(rgb), label

    @property
    def targets(self) -> np.ndarray:
        """Labels of all samples (read from the record headers once, on first use)."""
        if self._targets is None:
            handle, labels = self._file(), np.empty(len(self.keys), dtype=np.int64)
            for i, key in enumerate(self.keys):
                handle.seek(self.index.offset(int(key)) + 8)  # past magic + lrec
                head = handle.read(IR_SIZE + 4)
                flag, label = struct.unpack_from(IR_FORMAT, head)[:2]
                labels[i] = int(struct.unpack_from("<f", head, IR_SIZE)[0]) if flag > 0 else int(label)
            self._targets = labels
        return self._targets

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            self._num_classes = int(self.targets.max()) + 1
        return self._num_classes

    @property
    def classes(self) -> list[int]:
        return list(range(self.num_classes))

    def close(self) -> None:
        """Close this process's file handle (reopened on the next read)."""
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()
            self._handle = None

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordIODataset({str(self.rec_path)!r}, images={len(self)})"

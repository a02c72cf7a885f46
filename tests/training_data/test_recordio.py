"""RecordIO without MXNet: round trip with the writer, and reading bytes laid out by hand exactly as
MXNet's ``recordio.pack`` + dmlc's ``RecordIOWriter`` produce them (built here from the format spec)."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.data import DatasetError, ImageFolderDataset, RecordIODataset, read_index, write_recordio
from training.data.pack_folder import pack_image_folder
from training.data.recordio import frame_record, read_framed

MAGIC = 0xCED7230A


def mx_pack(flag: int, label, id_: int, id2: int, payload: bytes) -> bytes:
    """``mx.recordio.pack``: IRHeader 'IfQQ' (+ flag float32 labels when flag > 0) + payload."""
    if flag == 0:
        return struct.pack("<IfQQ", 0, float(label), id_, id2) + payload
    return struct.pack("<IfQQ", flag, 0.0, id_, id2) + struct.pack(f"<{flag}f", *label) + payload


def dmlc_frame(record: bytes) -> bytes:
    """One record as a single part: magic, (cflag 0 << 29) | length, data, zero padding to 4 bytes."""
    return struct.pack("<II", MAGIC, len(record)) + record + b"\0" * (-len(record) % 4)


def write_by_hand(folder: Path, records: dict[int, bytes]) -> tuple[Path, Path]:
    rec, idx = folder / "hand.rec", folder / "hand.idx"
    blob, lines = b"", []
    for key, record in records.items():
        lines.append(f"{key}\t{len(blob)}\n")
        blob += dmlc_frame(record)
    rec.write_bytes(blob)
    idx.write_text("".join(lines))
    return rec, idx


def test_round_trip_matches_folder_dataset(identity_folder: Path, tmp_path: Path):
    folder = ImageFolderDataset(identity_folder)
    summary = pack_image_folder(identity_folder, tmp_path / "rec", progress=False)
    assert (summary["images"], summary["identities"]) == (12, 4)
    ds = RecordIODataset(summary["rec"], summary["idx"])
    assert len(ds) == 12 and ds.num_classes == 4
    assert ds.targets.tolist() == folder.targets.tolist()
    for i in (0, 5, 11):
        (a, la), (b, lb) = ds[i], folder[i]
        assert la == lb and torch.equal(a, b)  # JPEG/PNG bytes are stored unchanged
    assert (tmp_path / "rec" / "train.classes.txt").read_text().split() == folder.classes


def test_writer_output_is_byte_identical_to_the_mxnet_layout(real_crops, tmp_path: Path):
    jpegs = [cv2.imencode(".jpg", c)[1].tobytes() for c in real_crops[:3]]
    labels = [0, 0, 1]
    write_recordio(tmp_path / "ours.rec", tmp_path / "ours.idx", zip(jpegs, labels, strict=True))
    # insightface layout: record 0 = (first identity key, end identity key); images 1..3; identities 4, 5
    expected = {0: mx_pack(2, [4.0, 6.0], 0, 0, b"")}
    for key, (jpeg, label) in enumerate(zip(jpegs, labels, strict=True), start=1):
        expected[key] = mx_pack(0, label, key, 0, jpeg)
    expected[4] = mx_pack(2, [1.0, 3.0], 4, 0, b"")
    expected[5] = mx_pack(2, [3.0, 4.0], 5, 0, b"")
    rec, idx = write_by_hand(tmp_path, expected)
    assert (tmp_path / "ours.rec").read_bytes() == rec.read_bytes()
    assert read_index(tmp_path / "ours.idx") == read_index(idx)


def test_reads_hand_built_file_with_array_labels_and_no_identity_records(real_crops, tmp_path: Path):
    # Glint360K-style image records carry their label as a float array (flag > 0); no record 0 header
    jpegs = [cv2.imencode(".png", c)[1].tobytes() for c in real_crops]
    records = {10 + k: mx_pack(2, [float(k % 2), 7.0], 10 + k, 0, jpeg) for k, jpeg in enumerate(jpegs)}
    rec, idx = write_by_hand(tmp_path, records)
    ds = RecordIODataset(rec, idx)
    assert len(ds) == 4 and ds.num_classes == 2
    assert ds.targets.tolist() == [0, 1, 0, 1]
    image, label = ds[3]
    assert label == 1
    expected = (real_crops[3][:, :, ::-1].astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_multi_part_records_split_at_aligned_magic(real_crops, tmp_path: Path):
    magic = struct.pack("<I", MAGIC)
    jpeg = cv2.imencode(".jpg", real_crops[1])[1].tobytes()
    jpeg += b"\0" * (-(24 + len(jpeg)) % 4)  # decoders ignore bytes after the JPEG end marker
    # magic at record offsets 24+len(jpeg) and +8 (aligned: split) and at +13 (unaligned: kept), then 2 bytes
    tail = magic + b"abcd" + magic + b"x" + magic + b"yz"
    record = mx_pack(0, 3, 1, 0, jpeg + tail)
    first = 24 + len(jpeg)
    expected = (
        struct.pack("<II", MAGIC, (1 << 29) | first) + record[:first]
        + struct.pack("<II", MAGIC, (2 << 29) | 4) + b"abcd"
        + struct.pack("<II", MAGIC, (3 << 29) | 7) + b"x" + magic + b"yz" + b"\0" * (-len(record) % 4)
    )
    assert frame_record(record) == expected
    rec, header0 = tmp_path / "multi.rec", dmlc_frame(mx_pack(2, [2.0, 3.0], 0, 0, b""))
    rec.write_bytes(header0 + expected)
    (tmp_path / "multi.idx").write_text(f"0\t0\n1\t{len(header0)}\n")
    with open(rec, "rb") as handle:
        assert read_framed(handle, len(header0)) == record
    ds = RecordIODataset(rec, tmp_path / "multi.idx")
    image, label = ds[0]
    assert label == 3 and ds.num_classes == 1
    direct = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), (direct - 127.5) / 127.5, atol=1e-6)


def test_corrupt_files_give_clear_errors(identity_folder: Path, tmp_path: Path):
    summary = pack_image_folder(identity_folder, tmp_path, progress=False)
    rec = Path(summary["rec"])
    data = bytearray(rec.read_bytes())
    offset = read_index(summary["idx"])[5]
    data[offset : offset + 4] = b"\0\0\0\0"
    bad = tmp_path / "bad.rec"
    bad.write_bytes(bytes(data))
    ds = RecordIODataset(bad, summary["idx"])
    with pytest.raises(DatasetError, match="magic") as info:
        ds[4]
    assert info.value.code == "bad_recordio"
    truncated = tmp_path / "short.rec"
    truncated.write_bytes(rec.read_bytes()[: offset + 100])
    with pytest.raises(DatasetError, match="truncated"):
        RecordIODataset(truncated, summary["idx"])[4]
    lines = Path(summary["idx"]).read_text().splitlines()
    (tmp_path / "gap.idx").write_text("".join(f"{line}\n" for line in lines if not line.startswith("3\t")))
    with pytest.raises(DatasetError, match="key 3 is not in the index"):
        RecordIODataset(rec, tmp_path / "gap.idx")[2]
    (tmp_path / "bad.idx").write_text("0\t0\nnot a line\n")
    with pytest.raises(DatasetError, match="bad.idx:2") as info:
        RecordIODataset(rec, tmp_path / "bad.idx")
    assert info.value.code == "bad_recordio"
    with pytest.raises(DatasetError) as info:
        RecordIODataset(tmp_path / "missing.rec")
    assert info.value.code == "dataset_not_found"
    with pytest.raises(DatasetError, match="not consecutive"):
        write_recordio(tmp_path / "x.rec", tmp_path / "x.idx", [(b"a", 0), (b"b", 1), (b"c", 0)])
    assert not (tmp_path / "x.rec").exists() and not (tmp_path / "x.rec.part").exists()

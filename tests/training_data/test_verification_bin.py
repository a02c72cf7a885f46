"""Verification .bin files: round trip, Python 2 pickles, NumPy items, refusal of hostile pickles."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data import DatasetError, load_bin_raw, read_bin, write_bin


def encoded(crops, ext=".jpg") -> list[bytes]:
    return [cv2.imencode(ext, c)[1].tobytes() for c in crops]


def test_round_trip(real_crops, tmp_path: Path):
    images = encoded(real_crops, ".png")
    write_bin(tmp_path / "set.bin", images, [True, False])
    decoded, issame = read_bin(tmp_path / "set.bin")
    assert issame.dtype == bool and issame.tolist() == [True, False]
    assert len(decoded) == 4
    for got, crop in zip(decoded, real_crops, strict=True):
        assert got.shape == (112, 112, 3) and np.array_equal(got, crop)  # PNG: lossless, BGR
    assert not (tmp_path / "set.bin.part").exists()
    with pytest.raises(DatasetError) as info:
        write_bin(tmp_path / "bad.bin", images[:3], [True, False])
    assert info.value.code == "bad_bin" and not (tmp_path / "bad.bin").exists()


def python2_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """What insightface's Python 2 tools wrote: protocol 2, images as str (BINSTRING opcodes)."""
    out = b"\x80\x02" + b"]("  # PROTO 2, EMPTY_LIST, MARK
    for data in images:
        out += b"T" + struct.pack("<I", len(data)) + data  # BINSTRING
    out += b"e" + b"]("  # APPENDS, EMPTY_LIST, MARK
    out += b"".join(b"\x88" if flag else b"\x89" for flag in issame)  # NEWTRUE / NEWFALSE
    return out + b"e\x86."  # APPENDS, TUPLE2, STOP


def test_reads_python2_and_numpy_item_bins(real_crops, tmp_path: Path):
    images = encoded(real_crops)
    py2 = tmp_path / "py2.bin"
    py2.write_bytes(python2_pickle(images, [False, True]))
    with pytest.raises(UnicodeDecodeError):  # why encoding="bytes" is needed
        pickle.loads(py2.read_bytes())
    raw, issame = load_bin_raw(py2)
    assert raw == images and issame.tolist() == [False, True]
    as_arrays = tmp_path / "arrays.bin"
    with open(as_arrays, "wb") as handle:
        arrays = [np.frombuffer(b, np.uint8) for b in images]
        pickle.dump((arrays, np.array([True, True])), handle, protocol=2)
    decoded, issame = read_bin(as_arrays)
    assert issame.tolist() == [True, True]
    assert np.array_equal(decoded[2], cv2.imdecode(np.frombuffer(images[2], np.uint8), cv2.IMREAD_COLOR))


def test_other_sizes_are_resized_like_insightface(real_crops, tmp_path: Path):
    big = [cv2.resize(c, (128, 128)) for c in real_crops[:2]]
    write_bin(tmp_path / "big.bin", encoded(big, ".png"), [True])
    decoded, _ = read_bin(tmp_path / "big.bin")
    assert decoded[0].shape == (112, 112, 3)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_hostile_or_malformed_pickles_are_refused(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hostile = tmp_path / "hostile.bin"
    hostile.write_bytes(pickle.dumps(([_Exploit(), b"x"], [True])))
    with pytest.raises(DatasetError) as info:
        load_bin_raw(hostile)
    assert info.value.code == "bad_bin" and "not allowed" in str(info.value)
    assert not (tmp_path / "pwned").exists()
    for content in (b"not a pickle", pickle.dumps({"a": 1}), pickle.dumps(([b"x", b"y", b"z"], [True]))):
        (tmp_path / "m.bin").write_bytes(content)
        with pytest.raises(DatasetError) as info:
            load_bin_raw(tmp_path / "m.bin")
        assert info.value.code == "bad_bin"
    with pytest.raises(DatasetError) as info:
        read_bin(tmp_path / "absent.bin")
    assert info.value.code == "dataset_not_found"

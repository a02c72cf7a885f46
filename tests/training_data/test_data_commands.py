"""``marginface data align | make-bin | pack | info`` end to end with the real inference core."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli.main import main
from training.data import RecordIODataset, load_bin_raw, read_bin


@pytest.fixture(scope="module")
def pipeline(default_pack):
    from models.pipeline import FacePipeline

    return FacePipeline.from_pack("default")


def largest_face_crop(pipeline, image: np.ndarray) -> np.ndarray:
    from models.align import norm_crop

    faces = pipeline.detect(image)
    return norm_crop(image, max(faces, key=lambda f: f.area).landmarks, 112)


def test_align_keeps_identity_folders_and_takes_the_largest_face(pipeline, t1_image_path, tmp_path, capsys):
    src, dst = tmp_path / "raw", tmp_path / "aligned"
    (src / "group_a").mkdir(parents=True)
    (src / "group_b").mkdir()
    shutil.copy(t1_image_path, src / "group_a" / "t1.jpg")
    t1 = cv2.imread(str(t1_image_path))
    cv2.imwrite(str(src / "group_b" / "t1_mirror.png"), t1[:, ::-1])
    cv2.imwrite(str(src / "group_b" / "blank.jpg"), np.full((300, 400, 3), 128, np.uint8))
    (src / "group_b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert len(pipeline.detect(t1)) == 6

    assert main(["data", "align", str(src), str(dst), "--workers", "2", "--no-progress"]) == 0
    report = json.loads((dst / "align_report.json").read_text())
    assert (report["photos"], report["aligned"], report["no_face"], report["unreadable"]) == (4, 2, 1, 1)
    assert report["several_faces_largest_kept"] == 2 and report["identities"] == 2
    misses = (dst / "align_misses.txt").read_text().splitlines()
    assert sorted(line.split("\t")[:2] for line in misses) == [
        ["no_face", "group_b/blank.jpg"], ["unreadable", "group_b/broken.jpg"]]
    crop = cv2.imread(str(dst / "group_a" / "t1.jpg"))
    assert crop.shape == (112, 112, 3)
    expected = largest_face_crop(pipeline, t1)
    assert np.abs(crop.astype(float) - expected).mean() < 3.0  # JPEG q95 of the same crop
    others = [
        cv2.imread(str(dst / "group_b" / "t1_mirror.jpg")).astype(float),
        largest_face_crop(pipeline, t1[:, ::-1].copy()).astype(float),
    ]
    assert np.abs(others[0] - others[1]).mean() < 3.0
    assert "2 photo(s) gave no crop" in capsys.readouterr().out

    # a second run keeps the crops it already made
    assert main(["data", "align", str(src), str(dst), "--workers", "1", "--no-progress"]) == 0
    report = json.loads((dst / "align_report.json").read_text())
    assert (report["kept_existing"], report["aligned"], report["no_face"]) == (2, 0, 1)
    assert main(["data", "align", str(src), str(src / "inside"), "--no-progress"]) == 1


def test_make_bin_from_pairs_file(pipeline, t1_image_path, aligned_crop_path, tmp_path, capsys):
    images = tmp_path / "lfw"
    for name in ("Ann", "Ben"):
        (images / name).mkdir(parents=True)
    t1 = cv2.imread(str(t1_image_path))
    shutil.copy(t1_image_path, images / "Ann" / "Ann_0001.jpg")
    cv2.imwrite(str(images / "Ann" / "Ann_0002.jpg"), t1[:, ::-1])
    cv2.imwrite(str(images / "Ben" / "Ben_0001.jpg"), np.full_like(t1, 90))  # same size, no face
    cv2.imwrite(str(images / "Ben" / "Ben_0002.jpg"), cv2.imread(str(aligned_crop_path)))  # already 112×112
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t2\nAnn\t1\t2\nBen\t1\t2\nAnn\t1\tBen\t2\nAnn\t2\tBen\t1\n")
    out = tmp_path / "mini.bin"
    assert main(["data", "make-bin", "--images", str(images), "--pairs", str(pairs), "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Ben_0001.jpg" in printed  # the no-face image is reported
    summary = json.loads(printed[: printed.index("}") + 1])
    assert (summary["detected"], summary["already_aligned"], summary["no_face_mean_landmarks"]) == (2, 1, 1)
    decoded, issame = read_bin(out)
    assert issame.tolist() == [True, True, False, False] and len(decoded) == 8
    assert all(img.shape == (112, 112, 3) for img in decoded)
    assert np.abs(decoded[0].astype(float) - largest_face_crop(pipeline, t1)).mean() < 3.0
    assert np.array_equal(decoded[0], decoded[4]) and np.array_equal(decoded[3], decoded[5])
    raw, _ = load_bin_raw(out)
    assert raw[3] == (images / "Ben" / "Ben_0002.jpg").read_bytes()  # aligned input stored as is

    pairs.write_text("1\t1\nAnn\t1\t2\nAnn\t1\tNobody\t2\n")  # a missing image
    assert main(["data", "make-bin", "--images", str(images), "--pairs", str(pairs), "--out",
                 str(tmp_path / "x.bin"), "--no-progress"]) == 1
    assert not (tmp_path / "x.bin").exists()


def test_pack_and_info(identity_folder: Path, tmp_path: Path, capsys):
    assert main(["data", "pack", str(identity_folder), str(tmp_path / "rec"), "--no-progress"]) == 0
    capsys.readouterr()
    assert len(RecordIODataset(tmp_path / "rec" / "train.rec")) == 12
    assert main(["data", "info", str(tmp_path / "rec" / "train.rec")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["images"], info["identities"], info["images_per_identity"]["min"]) == (12, 4, 3)
    cv2.imwrite(str(identity_folder / "mia" / "big.jpg"), np.zeros((120, 120, 3), np.uint8))
    assert main(["data", "pack", str(identity_folder), str(tmp_path / "rec2"), "--no-progress"]) == 1
    assert "wrong_image_size" in capsys.readouterr().err
    assert not (tmp_path / "rec2" / "train.rec").exists()

"""Quality from real photos, the CLI (calibrate, eval ident open-set), and migration 0004 in place."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import inspect

from models.quality import assess, pose_from_landmarks, sharpness


@pytest.fixture(scope="module")
def pipeline(default_pack):
    from models.pipeline import FacePipeline

    return FacePipeline.from_pack("default")


def one(pipeline, image):
    faces = pipeline.detect(image)
    assert faces
    face = max(faces, key=lambda f: f.area)
    return assess(face, pipeline.align(image, [face])[0])


def test_quality_tracks_pose_blur_and_size_on_a_real_face(pipeline, astronaut_bgr) -> None:
    base = one(pipeline, astronaut_bgr)
    assert abs(base.yaw) < 15 and abs(base.roll) < 10 and base.size_px > 80
    h, w = astronaut_bgr.shape[:2]
    rolls = [
        one(pipeline, cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((220, 120), a, 1.0), (w, h))).roll
        for a in (-25, 25)
    ]
    # the eye line follows the rotation (YuNet's landmarks under-rotate: about half the angle)
    assert rolls[0] > base.roll + 8 and rolls[1] < base.roll - 4
    blurred = one(pipeline, cv2.GaussianBlur(astronaut_bgr, (0, 0), 3))
    assert blurred.sharpness < 0.1 * base.sharpness
    small = one(pipeline, cv2.resize(astronaut_bgr, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    assert small.size_px == pytest.approx(base.size_px / 2, rel=0.15)


def test_yaw_sign_and_size_of_a_turned_face(pipeline, people) -> None:
    turned = one(pipeline, people["t1_4"])  # looking to the side in t1.jpg
    mirrored = one(pipeline, np.ascontiguousarray(people["t1_4"][:, ::-1]))
    assert turned.yaw < -30 and mirrored.yaw > 30
    assert abs(turned.yaw + mirrored.yaw) < 15
    assert abs(one(pipeline, people["t1_2"]).yaw) < 20


def test_pose_geometry_profile_and_pitch() -> None:
    frontal = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])
    yaw, pitch, roll = pose_from_landmarks(frontal)
    assert abs(yaw) < 2 and abs(pitch) < 2 and abs(roll) < 1
    profile = frontal.copy()
    profile[2, 0] = 15.0  # nose tip well beyond the far eye
    assert pose_from_landmarks(profile)[0] < -65
    down = frontal.copy()
    down[2, 1] = 85.0  # nose tip near the mouth line
    assert pose_from_landmarks(down)[1] > 20
    black = np.zeros((112, 112, 3), np.uint8)
    assert sharpness(black) == 0.0


def _write_people(root: Path, people: dict, names: list[str], variants: range) -> None:
    from tests.trust.conftest import augment

    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in variants:
            cv2.imwrite(str(root / name / f"{k:02d}.jpg"), augment(people[name], k))


def test_cli_calibrate_a_store_gallery_and_eval_ident_open_set(
    people, photo_root, tmp_path, monkeypatch, default_pack
) -> None:
    from app.calibration.store import TrustStore
    from app.services.bulk_enroll import enroll_directory
    from app.store.db import make_engine
    from app.store.repository import Repository
    from cli.main import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MARGINFACE_DATABASE_URL", url)
    enrolled, strangers = tmp_path / "enrolled", tmp_path / "strangers"
    _write_people(enrolled, people, ["t1_0", "t1_1", "t1_2", "t1_3"], range(3))
    _write_people(strangers, people, ["t1_4", "t1_5", "astronaut"], range(12))
    assert enroll_directory(str(enrolled), "cli", pack=None, limit=None) == 0

    out = tmp_path / "cal.json"
    args = ["calibrate", "--gallery", "cli", "--impostors", str(strangers), "--target-fpir", "0.1"]
    assert main([*args, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["stored"] and record["samples"]["sources"]["impostors"] == 36
    repo = Repository(make_engine(url))
    stored = TrustStore(repo).get(repo.get_gallery("cli").id).calibration
    assert stored["threshold"] == record["threshold"]
    assert main(["calibrate", "--gallery", "nope"]) == 1

    probes = tmp_path / "probes"  # unseen photos of the 4 enrolled people and of 4 others
    _write_people(probes, people, [*people], range(4, 8))
    report = tmp_path / "ident.json"
    plot = tmp_path / "det.png"
    args = ["eval", "ident", "--store-gallery", "cli", "--probes", str(probes), "--det-plot", str(plot)]
    assert main([*args, "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["gallery_subjects"] == 4 and data["non_mated_probes"] == 4 * 4
    assert data["at_threshold"]["threshold"] == pytest.approx(record["threshold"], abs=1e-3)
    assert data["rank_accuracy"]["rank1"] > 0.8 and data["at_threshold"]["fnir"] < 0.5
    assert plot.stat().st_size > 5000

    # folders only: --root splits subjects into enrolled and never enrolled
    root_report = tmp_path / "root.json"
    assert main(["eval", "ident", "--root", str(probes), "--json", str(root_report)]) == 0
    root = json.loads(root_report.read_text())
    assert root["gallery_subjects"] == 4 and root["mated_probes"] == 4 * 2 and root["non_mated_probes"] == 16


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_migration_0004_upgrades_an_existing_store_in_place(backend, tmp_path, request) -> None:
    from app.calibration.store import TrustStore
    from app.store.db import make_engine
    from app.store.migrate import upgrade
    from app.store.repository import Repository

    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    upgrade(engine, "0003")
    repo = Repository(engine)
    gallery = repo.create_gallery("old", "default", "1.0.0", 4, "flat")
    subject = repo.create_subject(gallery.id, "s")
    assert "gallery_trust" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert {"gallery_trust", "subject_negatives"} <= set(inspect(engine).get_table_names())
    trust = TrustStore(repo)
    trust.set_calibration(gallery.id, {"threshold": 0.5})
    trust.add_negative(gallery.id, subject.id, np.ones(4, np.float32), "x", None)
    assert trust.get(gallery.id).calibration == {"threshold": 0.5}
    repo.delete_subject(gallery.id, subject.id)  # a delete is a delete: its negatives go with it
    assert trust.negatives_of(gallery.id, [subject.id]) == {}
    repo.delete_gallery(gallery.id)
    assert trust.get(gallery.id) is None
    engine.dispose()

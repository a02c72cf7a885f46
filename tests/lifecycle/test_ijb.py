"""``marginface eval ijb`` on a small IJB-C-format set written from real photos, checked against values
computed independently here (own pooling loops, sklearn's ROC)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from cli.main import main as marginface
from models.evaluation.ijb import evaluate_ijb

VARIANTS = 5


def _variants(image: np.ndarray) -> list[np.ndarray]:
    h, w = image.shape[:2]
    return [
        image,
        np.roll(image, max(2, w // 30), axis=1),
        cv2.convertScaleAbs(image, alpha=1.15, beta=-10),
        cv2.resize(cv2.resize(image, (int(w * 0.8), int(h * 0.8))), (w, h)),
        cv2.GaussianBlur(image, (3, 3), 0),
    ]


@pytest.fixture(scope="module")
def ijb_root(t1_faces, astronaut_bgr, default_pack, tmp_path_factory) -> Path:
    """7 people × 5 photos; 2 templates per person (3 photos in 2 media, 2 photos in 2 media)."""
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack("default")
    root = tmp_path_factory.mktemp("IJBC")
    (root / "meta").mkdir()
    (root / "loose_crop").mkdir()
    people = [cv2.imdecode(np.frombuffer(f["crop"], np.uint8), cv2.IMREAD_COLOR) for f in t1_faces]
    people.append(astronaut_bgr)
    tid_mid, points, n = [], [], 0
    templates: dict[int, int] = {}
    for person, photo in enumerate(people):
        for v, image in enumerate(_variants(photo)):
            n += 1
            name = f"{n}.jpg"
            cv2.imwrite(str(root / "loose_crop" / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            face = max(pipeline.detect(cv2.imread(str(root / "loose_crop" / name))), key=lambda f: f.area)
            template = 10 * person + (1 if v < 3 else 2)
            media = 100 * person + (v // 2 if v < 3 else v)  # photos 0 and 1 share a media
            templates[template] = person
            tid_mid.append(f"{name} {template} {media}")
            coords = " ".join(f"{c:.2f}" for c in np.asarray(face.landmarks).ravel())
            points.append(f"{name} {coords} {float(face.score):.4f}")
    pairs = [
        f"{a} {b} {int(templates[a] == templates[b])}"
        for a in sorted(templates)
        for b in sorted(templates)
        if a < b
    ]
    (root / "meta" / "ijbc_face_tid_mid.txt").write_text("\n".join(tid_mid) + "\n")
    (root / "meta" / "ijbc_name_5pts_score.txt").write_text("\n".join(points) + "\n")
    (root / "meta" / "ijbc_template_pair_label.txt").write_text("\n".join(pairs) + "\n")
    return root


def _independent(root: Path, pipeline, face_score: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pair scores and labels by explicit loops: detect-free alignment from the meta landmarks."""
    from models.face import Face

    rows = [line.split() for line in (root / "meta" / "ijbc_face_tid_mid.txt").read_text().splitlines()]
    pts = {
        r[0]: r[1:]
        for r in (
            line.split() for line in (root / "meta" / "ijbc_name_5pts_score.txt").read_text().splitlines()
        )
    }
    media_feats: dict[int, dict[int, list[np.ndarray]]] = {}
    for name, template, media in rows:
        image = cv2.imread(str(root / "loose_crop" / name))
        values = [float(x) for x in pts[name]]
        landmarks = np.array(values[:10], np.float32).reshape(5, 2)
        face = Face(box=np.array([0, 0, 1, 1], np.float32), score=values[10], landmarks=landmarks)
        crop = pipeline.align(image, [face])
        a = pipeline.embed_crops(crop)[0]
        b = pipeline.embed_crops(np.ascontiguousarray(crop[:, :, ::-1]))[0]
        feat = (a / np.linalg.norm(a) + b / np.linalg.norm(b)) * (values[10] if face_score else 1.0)
        media_feats.setdefault(int(template), {}).setdefault(int(media), []).append(feat)
    template_feat = {}
    for template, medias in media_feats.items():
        total = sum(np.mean(np.stack(feats), axis=0) for feats in medias.values())
        template_feat[template] = total / np.linalg.norm(total)
    pairs = [
        line.split() for line in (root / "meta" / "ijbc_template_pair_label.txt").read_text().splitlines()
    ]
    scores = np.array([float(template_feat[int(a)] @ template_feat[int(b)]) for a, b, _ in pairs])
    return scores, np.array([int(p[2]) for p in pairs])


def test_ijb_matches_independent_computation(ijb_root, default_pack):
    face_score = True
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack("default")
    report = evaluate_ijb(ijb_root, pipeline.embed_crops, "ijbc", flip=True, face_score=face_score)
    scores, labels = _independent(ijb_root, pipeline, face_score)
    assert report["pairs"] == len(labels) == 91 and report["genuine"] == 7 and report["templates"] == 14
    np.testing.assert_allclose(report["scores"], scores, atol=2e-5)
    assert scores[labels == 1].mean() > scores[labels == 0].mean() + 0.3  # a real model on real faces
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    for far, tar in report["tar_at_far"].items():
        if float(far) * 84 < 1:
            assert tar is None  # 84 impostor pairs cannot measure it
        else:
            assert tar == pytest.approx(tpr[fpr <= float(far)].max())
    assert report["tar_at_far"]["0.1"] is not None
    # without face-score weighting the scores change (the weights differ per photo)
    plain = evaluate_ijb(ijb_root, pipeline.embed_crops, "ijbc", flip=False, face_score=False)
    assert np.abs(plain["scores"] - report["scores"]).max() > 1e-4


def test_eval_ijb_cli(ijb_root, default_pack, tmp_path, capsys):
    out, roc = tmp_path / "ijb.json", tmp_path / "roc.png"
    assert marginface(["eval", "ijb", str(ijb_root), "--json", str(out), "--roc", str(roc)]) == 0
    printed = capsys.readouterr().out
    assert "TAR (%)" in printed and "1e-06" in printed
    data = json.loads(out.read_text())
    assert data["templates"] == 14 and len(data["scores"]) == 91 and roc.stat().st_size > 1000
    (ijb_root / "meta" / "ijbc_template_pair_label.txt").rename(tmp_path / "moved.txt")
    try:
        assert marginface(["eval", "ijb", str(ijb_root)]) == 1
        assert "bad_ijb" in capsys.readouterr().err
    finally:
        (tmp_path / "moved.txt").rename(ijb_root / "meta" / "ijbc_template_pair_label.txt")

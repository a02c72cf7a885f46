"""Checkpoint → export → pack → install → pipeline: the exported pack runs like the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.export.errors import ExportError
from training.export.exporter import ExportOptions, export_pack


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mobilefacenet_checkpoint: Path, small_bin: Path) -> dict:
    out = tmp_path_factory.mktemp("export") / "mfn-pack"
    summary = export_pack(
        ExportOptions(checkpoint=mobilefacenet_checkpoint, out=out, name="mfn-test", eval_bin=small_bin)
    )
    return summary


def test_pack_manifest_holds_normalisation_parity_and_thresholds(exported: dict) -> None:
    from models.packs.manifest import PackManifest

    pack = Path(exported["pack"])
    manifest = PackManifest.read(pack)
    rec = manifest.model("recogniser")
    assert rec.format == "arcface" and rec.color_order == "RGB"
    assert rec.mean == (127.5, 127.5, 127.5) and rec.std == (127.5, 127.5, 127.5)
    assert rec.dynamic_batch and rec.embedding_size == 128 and rec.input_size == (112, 112)
    parity = rec.model_extra["parity"]
    assert parity["faces"] == 7 and parity["min_cosine"] >= 0.99999
    assert set(manifest.thresholds) == {"far_0.001", "far_0.0001", "default"}
    assert manifest.thresholds["default"].value == manifest.thresholds["far_0.001"].value
    assert manifest.thresholds["far_0.0001"].value >= manifest.thresholds["far_0.001"].value
    assert "faces" in manifest.thresholds["default"].source  # names the evaluation set
    assert manifest.notes["export"]["opset"] >= 17
    card = (pack / "MODEL_CARD.md").read_text()
    for heading in ("## Model", "## Training", "## Evaluation at export", "## Thresholds"):
        assert heading in card
    assert not [p.name for p in pack.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_exported_model_scores_like_the_checkpoint(exported: dict) -> None:
    results = exported["evaluation"]["results"]
    torch_acc = results["checkpoint (PyTorch fp32)"]["accuracy"]
    onnx_acc = results["pack runtime (fp32 ONNX, ONNX Runtime)"]["accuracy"]
    assert abs(onnx_acc - torch_acc) * 100 <= 0.1
    assert results["pack runtime (fp32 ONNX, ONNX Runtime)"]["max_abs_pair_cosine_diff_vs_checkpoint"] < 1e-4


def test_installed_pack_embeds_t1_faces_like_pytorch(
    exported: dict, mobilefacenet_checkpoint: Path, t1_image_path: Path
) -> None:
    import cv2

    from models.packs.install import install_pack
    from models.pipeline import FacePipeline
    from training.export.checkpoint import load_checkpoint
    from training.export.parity import torch_embeddings

    installed = install_pack(exported["pack"], force=True)
    assert (installed / "MODEL_CARD.md").read_text() == (Path(exported["pack"]) / "MODEL_CARD.md").read_text()
    pipeline = FacePipeline.from_pack("mfn-test")
    image = cv2.imread(str(t1_image_path))
    faces = pipeline.detect(image)
    assert len(faces) == 6
    crops = pipeline.align(image, faces)
    batch = pipeline.embed_crops(crops)
    one_by_one = np.concatenate([pipeline.embed_crops(c[None]) for c in crops])
    reference = torch_embeddings(load_checkpoint(mobilefacenet_checkpoint).model, crops)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.min(np.sum(batch * reference, axis=1)) >= 0.9999
    assert np.allclose(batch, one_by_one, atol=1e-5)  # the dynamic batch axis works


def test_out_folder_is_not_overwritten_without_force(exported: dict, mobilefacenet_checkpoint: Path) -> None:
    before = json.loads((Path(exported["pack"]) / "pack.json").read_text())
    with pytest.raises(ExportError) as err:
        export_pack(
            ExportOptions(checkpoint=mobilefacenet_checkpoint, out=Path(exported["pack"]), threshold=0.3)
        )
    assert err.value.code == "out_exists"
    assert json.loads((Path(exported["pack"]) / "pack.json").read_text()) == before


def test_server_loads_the_exported_pack_and_verifies_with_its_threshold(
    exported: dict, tmp_path: Path, t1_image_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings
    from models.packs.install import install_pack
    from models.packs.manifest import PackManifest

    install_pack(exported["pack"], force=True)
    threshold = PackManifest.read(Path(exported["pack"])).default_threshold
    settings = Settings(home=tmp_path, auth=False, packs=["mfn-test"], sync_interval_s=0.2)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "mfn-test" in ready.text
        photo = t1_image_path.read_bytes()
        files = {"image1": ("a.jpg", photo, "image/jpeg"), "image2": ("b.jpg", photo, "image/jpeg")}
        same = client.post("/verify", files=files, data={"face1": "0", "face2": "0"})
        assert same.status_code == 200, same.text
        body = same.json()
        assert body["similarity"] > 0.999
        assert abs(body["threshold"] - threshold) < 1e-4

"""ONNX recognisers imported into registry backbones: per-face parity with ONNX Runtime on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.lifecycle.faces import cosines, real_aligned_faces, to_trainer_input
from training.backbones import build_backbone
from training.onnx_import import OnnxImportError, import_onnx

PARITY = 0.9999


@pytest.fixture(scope="module")
def faces(t1_bgr, astronaut_bgr, aligned_crop_path, default_pack) -> np.ndarray:
    return real_aligned_faces(t1_bgr, astronaut_bgr, aligned_crop_path)


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def _torch(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def test_default_pack_sface_parity(faces, default_pack):
    """The served SFace graph (as the pack feeds it) and the imported registry backbone agree per face."""
    onnx_path = default_pack / "sface_2021dec_float32.onnx"
    model, report = import_onnx(onnx_path)
    assert report.backbone == "sface" and report.method == "structure"
    assert sum(p.numel() for p in model.parameters()) > 9_000_000
    rgb = np.ascontiguousarray(faces[:, :, :, ::-1].transpose(0, 3, 1, 2)).astype(np.float32)
    reference = _ort(onnx_path, rgb)  # the pack's input: RGB 0…255, scaled inside the graph
    ours = _torch(model, to_trainer_input(faces))
    per_face = cosines(reference, ours)
    assert per_face.min() >= PARITY, per_face
    # the faces differ from each other: parity is not an artefact of constant outputs
    assert cosines(reference[:1].repeat(len(reference), 0), reference)[1:].min() < 0.9


def _export(model: torch.nn.Module, path: Path) -> None:
    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, 3, 112, 112),),
        str(path),
        dynamo=False,
        do_constant_folding=True,
        input_names=["input"],
        output_names=["embedding"],
    )


def _randomise_bn(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.mark.parametrize("name", ["iresnet18", "mobilefacenet"])
def test_arcface_style_onnx_maps_onto_registry(name, faces, tmp_path):
    """An ArcFace-style export (BN folded into convolutions, preprocessing outside) of each layout."""
    source = build_backbone(name, embedding_size=512 if name.startswith("iresnet") else 128)
    _randomise_bn(source, 3)
    path = tmp_path / f"{name}.onnx"
    _export(source, path)
    model, report = import_onnx(path)
    assert report.backbone == name
    assert report.method == "structure" and report.folded_bn > 0  # the export folded BN into convs
    x = to_trainer_input(faces)
    per_face = cosines(_ort(path, x), _torch(model, x))
    assert per_face.min() >= PARITY, per_face
    with pytest.raises(OnnxImportError):
        import_onnx(path, backbone="sface")


def test_pixamatch_mobilefacenet_parity(shared_dir, faces):
    """A public MobileFaceNet export (ReLU6, BN folded) maps onto ``mobilefacenet_relu6``, per real face."""
    path = shared_dir / "models" / "mobilefacenet_pixamatch.onnx"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    model, report = import_onnx(path)
    assert report.backbone == "mobilefacenet_relu6" and report.folded_bn == 51
    rgb = faces[:, :, :, ::-1].astype(np.float32)
    x = np.ascontiguousarray(((rgb - 127.5) / 128.0).transpose(0, 3, 1, 2))  # its documented input
    per_face = cosines(_ort(path, x), _torch(model, x))
    assert per_face.min() >= PARITY, per_face


def test_unknown_layout_is_refused(tmp_path):
    """A graph that fits no registry layout is refused with a clear error, not loaded as garbage."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 110 * 110, 16)
    )
    path = tmp_path / "odd.onnx"
    _export(model, path)
    with pytest.raises(OnnxImportError, match="fits no registry backbone"):
        import_onnx(path)

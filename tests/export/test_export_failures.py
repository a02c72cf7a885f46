"""Exports that must refuse: corrupt graphs, missing TensorRT, missing thresholds, wrong checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.export import onnx_export
from training.export.errors import ExportError
from training.export.exporter import ExportOptions, export_pack


def _corrupt_weights(path: Path) -> None:
    """Scale the largest weight tensor of an ONNX file: a graph that no longer matches its checkpoint."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(largest).copy()
    array *= -0.5
    largest.CopyFrom(numpy_helper.from_array(array, largest.name))
    onnx.save(model, str(path))


def test_corrupted_onnx_weights_fail_parity_and_leave_no_pack(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = onnx_export.export_onnx

    def export_then_corrupt(model, path, **kwargs):
        facts = real_export(model, path, **kwargs)
        _corrupt_weights(Path(path))
        return facts

    monkeypatch.setattr(onnx_export, "export_onnx", export_then_corrupt)
    out = tmp_path / "pack"
    with pytest.raises(ExportError) as err:
        export_pack(
            ExportOptions(
                checkpoint=tiny_checkpoint, out=out, threshold=0.3, exporter="torchscript", trust_code=True
            )
        )
    assert err.value.code == "parity_failed"
    assert "cosine" in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_fp16_passes_its_own_bar_and_fp32_bar_rejects_noise(
    tmp_path: Path, tiny_checkpoint: Path, reference_faces: np.ndarray
) -> None:
    from training.export.checkpoint import load_checkpoint
    from training.export.parity import check_parity, compare, torch_embeddings

    model = load_checkpoint(tiny_checkpoint, trust_code=True).model
    fp32 = tmp_path / "m.onnx"
    facts = onnx_export.export_onnx(model, fp32, exporter="torchscript")
    assert facts["opset"] >= 17
    onnx_export.convert_fp16(fp32, tmp_path / "m16.onnx")
    reference = torch_embeddings(model, reference_faces)
    report = check_parity(reference, tmp_path / "m16.onnx", reference_faces, "fp16")
    assert 0.999 <= report.min_cosine < 1.0
    noisy = reference + np.random.default_rng(0).normal(0, 0.05 * np.abs(reference).mean(), reference.shape)
    assert not compare(reference, noisy.astype(np.float32), "fp32").passed


def test_int8_export_reports_accuracy_change(
    tmp_path: Path, tiny_checkpoint: Path, reference_faces: np.ndarray, small_bin: Path
) -> None:
    import cv2
    import onnx

    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for k, crop in enumerate(reference_faces):
        cv2.imwrite(str(calibration / f"{k}.png"), crop)
        cv2.imwrite(str(calibration / f"{k}_flip.png"), crop[:, ::-1])
    out = tmp_path / "int8-pack"
    summary = export_pack(
        ExportOptions(
            checkpoint=tiny_checkpoint,
            out=out,
            int8_calibration=calibration,
            int8_min_cosine=0.5,  # an untrained net quantises far worse than a trained one
            eval_bin=small_bin,
            exporter="torchscript",
            trust_code=True,  # the tiny backbone is tests.export.tiny_backbone:build
        )
    )
    assert summary["precision"] == "int8"
    assert [p["precision"] for p in summary["parity"]] == ["fp32", "int8"]
    assert summary["parity"][1]["required_cosine"] == 0.5
    ops = {node.op_type for node in onnx.load(str(out / "recogniser_int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not (out / "recogniser.onnx").exists()
    deltas = summary["evaluation"]["deltas"]
    assert any("int8 ONNX" in key for key in deltas)
    assert "int8" in summary["thresholds"]["default"]["source"]


def test_int8_below_the_default_bar_is_refused(
    tmp_path: Path, tiny_checkpoint: Path, reference_faces: np.ndarray
) -> None:
    from training.export.checkpoint import load_checkpoint
    from training.export.parity import check_parity, torch_embeddings
    from training.export.quantize import quantize_int8

    model = load_checkpoint(tiny_checkpoint, trust_code=True).model
    fp32 = tmp_path / "m.onnx"
    onnx_export.export_onnx(model, fp32, exporter="torchscript")
    quantize_int8(fp32, tmp_path / "q.onnx", reference_faces)
    reference = torch_embeddings(model, reference_faces)
    report = check_parity(reference, tmp_path / "q.onnx", reference_faces, "int8", min_cosine=0.0)
    if report.min_cosine >= 0.999:
        pytest.skip("this quantised model happens to clear the 0.999 bar")
    with pytest.raises(ExportError) as err:
        check_parity(reference, tmp_path / "q.onnx", reference_faces, "int8")
    assert err.value.code == "parity_failed"


def test_cli_tensorrt_without_tensorrt_says_what_is_missing(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture
) -> None:
    from cli.main import main
    from training.export.tensorrt_build import tensorrt_missing

    missing = tensorrt_missing()
    if missing is None:
        pytest.skip("TensorRT and a GPU are present here")
    out = tmp_path / "trt-pack"
    code = main(["export", str(tiny_checkpoint), "--out", str(out), "--tensorrt", "--threshold", "0.3",
                 "--trust-code"])
    err = capsys.readouterr().err
    assert code == 1
    assert "tensorrt_unavailable" in err and "tensorrt" in err.lower()
    assert missing.split(";")[0] in err
    assert not out.exists()


def test_cli_refuses_export_without_a_threshold_source(tmp_path: Path, tiny_checkpoint: Path, capsys):
    from cli.main import main

    code = main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "p"), "--trust-code"])
    assert code == 1
    assert "bad_eval_set" in capsys.readouterr().err


def test_checkpoint_with_foreign_weights_is_refused(tmp_path: Path, tiny_checkpoint: Path) -> None:
    import torch

    from training.export.checkpoint import load_checkpoint

    state = torch.load(tiny_checkpoint, weights_only=False)
    state["config"]["backbone"] = "mobilefacenet"
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(ExportError) as err:
        load_checkpoint(bad)
    assert err.value.code == "bad_checkpoint"

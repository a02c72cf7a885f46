"""INT8: ONNX Runtime static quantisation (QDQ, per-channel weights) calibrated on aligned faces."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from training.export.errors import ExportError
from training.export.parity import to_input


class _FaceReader:
    """CalibrationDataReader over aligned BGR crops, in small batches."""

    def __init__(self, input_name: str, crops_bgr: np.ndarray, batch_size: int = 8) -> None:
        data = to_input(crops_bgr)
        self._batches = iter(
            [{input_name: data[s : s + batch_size]} for s in range(0, len(data), batch_size)]
        )

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration_bgr: np.ndarray, method: str = "minmax"
) -> dict:
    """Write a QDQ INT8 model calibrated on ``calibration_bgr`` (N×112×112×3 uint8).

    Activations are uint8 (asymmetric), weights int8 per output channel; ``method`` is ``minmax``,
    ``entropy`` or ``percentile``. Returns a description for the manifest.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration_bgr) < 2:
        raise ExportError("INT8 calibration needs at least 2 aligned faces", code="quantization_failed")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ExportError(f"unknown calibration method {method!r}", code="quantization_failed")
    with tempfile.TemporaryDirectory(prefix="marginface-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
            quantize_static(
                str(prepared),
                str(int8_path),
                _FaceReader("data", calibration_bgr),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
            )
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises assorted types from inside the quantiser
            raise ExportError(f"INT8 quantisation failed: {exc}", code="quantization_failed") from exc
    return {
        "format": "QDQ",
        "per_channel": True,
        "activations": "uint8",
        "weights": "int8",
        "calibration_method": method,
        "calibration_faces": int(len(calibration_bgr)),
    }

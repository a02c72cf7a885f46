"""Parity: the exported ONNX graph must give the checkpoint's embeddings on real aligned faces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.export.errors import ExportError

MEAN = 127.5
STD = 127.5
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "int8": 0.999}


def to_input(crops_bgr: np.ndarray) -> np.ndarray:
    """N×112×112×3 uint8 BGR crops → N×3×112×112 float32 RGB, (x − 127.5)/127.5 (training normalisation)."""
    crops = np.asarray(crops_bgr)
    if crops.ndim != 4 or crops.shape[1:] != (112, 112, 3):
        raise ExportError(f"expected N×112×112×3 aligned crops, got {crops.shape}", code="no_faces")
    return ((crops[..., ::-1].astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2).copy()


def _l2(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)  # float32 squares overflow on untrained nets with huge activations
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)


def torch_embeddings(model: Any, crops_bgr: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Raw (unnormalised) float32 embeddings from the PyTorch model."""
    import torch

    batches = []
    data = to_input(crops_bgr)
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batches.append(model(torch.from_numpy(data[start : start + batch_size])).float().numpy())
    return np.concatenate(batches).astype(np.float32)


def ort_session(path: str | Path, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session through the project's session factory when present."""
    try:
        from models.onnx_session import create_session
    except ImportError:
        import onnxruntime as ort

        return ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
    session, _used = create_session(str(path), providers or ["cpu"])
    return session


def onnx_embeddings(path_or_session: Any, crops_bgr: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Raw float32 embeddings from an ONNX file (or an open session)."""
    session = ort_session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    name = session.get_inputs()[0].name
    data = to_input(crops_bgr)
    out = [session.run(None, {name: data[s : s + batch_size]})[0] for s in range(0, len(data), batch_size)]
    return np.concatenate(out).astype(np.float32)


@dataclass
class ParityReport:
    """Per-face cosine between the PyTorch and ONNX embeddings, with the bar they had to clear."""

    precision: str
    cosines: list[float]
    min_cosine_required: float
    max_abs_diff: float
    faces: int

    @property
    def min_cosine(self) -> float:
        return float(min(self.cosines))

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.min_cosine_required

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "faces": self.faces,
            "min_cosine": round(self.min_cosine, 8),
            "mean_cosine": round(float(np.mean(self.cosines)), 8),
            "required_cosine": self.min_cosine_required,
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
        }


def compare(reference: np.ndarray, candidate: np.ndarray, precision: str) -> ParityReport:
    """Cosine per row between two raw embedding matrices."""
    if reference.shape != candidate.shape:
        raise ExportError(f"embedding shapes differ: {reference.shape} vs {candidate.shape}", "parity_failed")
    if not np.all(np.isfinite(candidate)):
        cosines = [float("-inf")] * len(candidate)
    else:
        cosines = [float(c) for c in np.sum(_l2(reference) * _l2(candidate), axis=1)]
    diff = float(np.max(np.abs(reference - candidate))) if np.all(np.isfinite(candidate)) else float("inf")
    return ParityReport(precision, cosines, MIN_COSINE[precision], diff, len(reference))


def check_parity(
    reference: np.ndarray,
    onnx_path: str | Path,
    crops_bgr: np.ndarray,
    precision: str,
    min_cosine: float | None = None,
) -> ParityReport:
    """Run ``onnx_path`` on ``crops_bgr`` and compare with the PyTorch ``reference`` embeddings.

    Raises ExportError(code="parity_failed") when any face falls below the precision's bar
    (fp32 0.99999, fp16/int8 0.999; ``min_cosine`` overrides the bar).
    """
    report = compare(reference, onnx_embeddings(onnx_path, crops_bgr), precision)
    if min_cosine is not None:
        report.min_cosine_required = float(min_cosine)
    if not report.passed:
        worst = int(np.argmin(report.cosines))
        raise ExportError(
            f"{precision} ONNX model does not match the checkpoint: face {worst} has cosine "
            f"{report.min_cosine:.6f} < {report.min_cosine_required} (over {report.faces} faces)",
            code="parity_failed",
        )
    return report

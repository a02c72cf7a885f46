"""Running pack models in ONNX Runtime to check them: sessions, reference crops, smoke runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import PackError
from models.packs.manifest import ModelEntry, PackManifest


def ort_session(model: str | Path | bytes, threads: int = 1):
    """A quiet CPU ONNX Runtime session (``threads`` intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def normalised(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine similarity between two embedding matrices."""
    return float((normalised(a) * normalised(b)).sum(axis=1).min())


def insightface_image(name: str) -> Path | None:
    """Path of a sample image shipped in the insightface wheel (``t1.jpg``, ``Tom_Hanks_54745.png``)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("insightface")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / name
    return path if path.is_file() else None


def reference_crops() -> tuple[np.ndarray, str]:
    """Aligned 112×112 RGB uint8 crops for numeric checks, and a description of where they came from.

    The Tom Hanks crop from the insightface wheel with flips and shifts when that package is present;
    otherwise smooth synthetic images (a deterministic stand-in, said so in the description).
    """
    import cv2

    path = insightface_image("Tom_Hanks_54745.png")
    if path is not None:
        rgb = cv2.imread(str(path))[:, :, ::-1]
        crops = [
            rgb,
            rgb[:, ::-1],
            np.roll(rgb, 3, axis=1),
            np.roll(rgb, -4, axis=0),
            np.roll(rgb[:, ::-1], 2, 1),
        ]
        return np.ascontiguousarray(
            np.stack(crops)
        ), "insightface Tom_Hanks_54745.png, its mirror and 3 shifts"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(5, 14, 14, 3), dtype=np.uint8)
    crops = np.stack([cv2.resize(s, (112, 112), interpolation=cv2.INTER_CUBIC) for s in small])
    return crops, "5 smooth synthetic 112x112 images (insightface sample crop not available)"


def to_blob(images: np.ndarray, entry: ModelEntry) -> np.ndarray:
    """N×H×W×3 uint8 images in the entry's colour order → N×3×H×W float32 with its mean/std."""
    x = images.astype(np.float32)
    mean = np.asarray(entry.mean, np.float32)
    std = np.asarray(entry.std, np.float32)
    return np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2))


def dummy_input_shape(session, entry: ModelEntry, batch: int) -> list[int]:
    shape = session.get_inputs()[0].shape
    if entry.role == "recogniser":
        height, width = 112, 112
    elif entry.input_size is not None:
        width, height = entry.input_size
    else:
        height = shape[2] if isinstance(shape[2], int) else 320
        width = shape[3] if isinstance(shape[3], int) else 320
    first = shape[0] if isinstance(shape[0], int) else batch
    return [first, 3, height, width]


def smoke_run(folder: Path, manifest: PackManifest, batch: int = 2) -> list[str]:
    """Load every model in ONNX Runtime and run one dummy batch; returns one line per model.

    Raises PackError ``model_failed`` naming the model that does not load or run, or whose
    recogniser output does not have the declared embedding size.
    """
    from models.packs.store import model_path

    lines = []
    rng = np.random.default_rng(0)
    for entry in manifest.models:
        path = model_path(folder, entry.file)
        try:
            session = ort_session(path)
            shape = dummy_input_shape(session, entry, batch)
            x = rng.uniform(0, 255, size=shape).astype(np.float32)
            x = (x - np.asarray(entry.mean, np.float32)[:, None, None]) / np.asarray(entry.std, np.float32)[
                :, None, None
            ]
            outputs = session.run(None, {session.get_inputs()[0].name: x})
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises many unrelated types
            raise PackError(f"{entry.role} {entry.file} does not run: {exc}", code="model_failed") from exc
        if entry.role == "recogniser":
            out = outputs[0]
            if out.shape[0] != shape[0] or (entry.embedding_size and out.shape[-1] != entry.embedding_size):
                raise PackError(
                    f"recogniser {entry.file} gave output shape {out.shape}, expected "
                    f"({shape[0]}, {entry.embedding_size})",
                    code="model_failed",
                )
            if not np.isfinite(out).all():
                raise PackError(f"recogniser {entry.file} produced NaN/inf", code="model_failed")
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs[:3])
        lines.append(
            f"{entry.role} {entry.file}: input {tuple(shape)} -> {len(outputs)} outputs ({shapes}...)"
        )
    return lines

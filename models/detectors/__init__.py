"""Face detectors (SCRFD, YuNet) on ONNX Runtime, built from a pack's model entry."""

from __future__ import annotations

from pathlib import Path

from models.detectors.base import Detector, nms
from models.detectors.scrfd import SCRFDDetector
from models.detectors.yunet import YuNetDetector
from models.errors import PackError

DETECTORS: dict[str, type[Detector]] = {"scrfd": SCRFDDetector, "yunet": YuNetDetector}

__all__ = ["Detector", "SCRFDDetector", "YuNetDetector", "build_detector", "nms"]


def build_detector(entry, model_path: str | Path, providers: list[str] | None = None, **options) -> Detector:
    """A detector for a pack ``ModelEntry`` (format scrfd or yunet) and its ONNX file.

    ``options``: score_threshold, nms_threshold, max_faces, min_size, input_size (w, h) for models that take
    any size, threads, strict (provider strictness, see ``create_session``).
    """
    from models.onnx_session import create_session

    cls = DETECTORS.get(entry.format)
    if cls is None:
        raise PackError(f"{entry.file}: {entry.format!r} is not a detector format", code="bad_manifest")
    threads = options.pop("threads", None)
    strict = options.pop("strict", True)
    if options.get("input_size") is None and entry.input_size is not None:
        options["input_size"] = tuple(entry.input_size)
    session, used = create_session(model_path, providers, threads=threads, strict=strict)
    try:
        return cls(session, providers=used, **options)
    except ValueError as exc:
        raise PackError(f"{entry.file}: {exc}", code="bad_manifest") from exc

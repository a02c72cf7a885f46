"""Typed errors of the export path (each carries a ``code`` for the CLI)."""

from __future__ import annotations

from models.errors import MarginFaceError


class ExportError(MarginFaceError):
    """An export that cannot be completed.

    Codes: ``bad_checkpoint``, ``export_failed``, ``parity_failed``, ``no_faces``, ``bad_eval_set``,
    ``quantization_failed``, ``tensorrt_unavailable``, ``out_exists``.
    """

    code = "export_error"

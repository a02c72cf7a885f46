"""Typed errors of the inference runtime; every one carries a machine-readable ``code``."""

from __future__ import annotations


class MarginFaceError(Exception):
    """Base class: ``code`` is a stable snake_case identifier for APIs and CLIs."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InvalidImageError(MarginFaceError):
    """An image that cannot be used.

    Codes: ``empty_image``, ``image_too_large`` (bytes), ``too_many_pixels``, ``unsupported_format``,
    ``corrupt_image`` (undecodable or truncated), ``bad_image`` (anything else, e.g. wrong shape or dtype).
    """

    code = "bad_image"


class PackError(MarginFaceError):
    """A model pack that cannot be used.

    Codes: ``pack_not_found``, ``bad_manifest``, ``hash_mismatch``, ``missing_file``,
    ``license_not_accepted``, ``download_failed``, ``pack_exists``,
    ``model_failed`` (a pack model does not load or run),
    ``conversion_failed`` (an install-time repair did not reproduce the original model).
    """

    code = "pack_error"


class ProviderError(MarginFaceError):
    """An execution provider (CUDA, TensorRT) that was asked for and cannot be used."""

    code = "provider_unavailable"


class NoFaceError(MarginFaceError):
    """No face was found where one was required."""

    code = "no_face"

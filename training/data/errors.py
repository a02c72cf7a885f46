"""Typed errors of the training-data layer."""

from __future__ import annotations

from models.errors import MarginFaceError


class DatasetError(MarginFaceError):
    """A dataset that cannot be used.

    Codes: ``dataset_not_found``, ``empty_dataset``, ``wrong_image_size`` (crops must be 112×112: run
    ``marginface data align`` first), ``corrupt_image``, ``bad_recordio`` (framing, magic, index),
    ``bad_bin`` (verification .bin), ``bad_pairs`` (pairs file), ``bad_output`` (refused destination).
    """

    code = "bad_dataset"

"""Calibrate a stored gallery: gather scores (its own subjects left out one at a time, impostor and
labelled probe embeddings), estimate the thresholds, store the record with the gallery."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from app.calibration.estimate import (
    DEFAULT_GROWTH_LIMIT,
    DEFAULT_TARGET_FAR,
    DEFAULT_TARGET_FPIR,
    calibrate,
)
from app.calibration.sources import build_input
from app.calibration.store import TrustStore
from app.services.errors import Conflict
from app.store.models import Gallery


def gallery_embeddings(repo, gallery: Gallery) -> tuple[np.ndarray, np.ndarray]:
    """(N×D embeddings, subject id of each) of every face stored in the gallery."""
    chunks = list(repo.iter_embeddings(gallery.id))
    if not chunks:
        return np.zeros((0, gallery.embedding_size), np.float32), np.zeros(0, np.int64)
    return np.concatenate([c[2] for c in chunks]), np.concatenate([c[1] for c in chunks])


def calibrate_gallery(
    repo,
    gallery: Gallery,
    *,
    impostors: np.ndarray | None = None,
    probes: np.ndarray | None = None,
    probe_subjects: np.ndarray | None = None,
    use_gallery: bool = True,
    target_fpir: float = DEFAULT_TARGET_FPIR,
    target_far: float = DEFAULT_TARGET_FAR,
    growth_limit: float = DEFAULT_GROWTH_LIMIT,
    save: bool = True,
) -> dict[str, Any]:
    """The calibration record of ``gallery`` (saved with it unless ``save`` is false).

    ``probes`` are labelled with subject ids (a label that is no subject of the gallery, e.g. -1, makes
    a non-mated probe). Conflict (``calibration_needs_data``) when there is nothing to calibrate on."""
    embeddings, subjects = gallery_embeddings(repo, gallery)
    if len(np.unique(subjects)) == 0:
        raise Conflict(
            "the gallery has no faces; enroll subjects before calibrating", code="calibration_needs_data"
        )
    try:
        data, counts = build_input(
            embeddings,
            subjects,
            impostors=impostors,
            probes=probes,
            probe_labels=probe_subjects,
            use_gallery=use_gallery,
        )
        record = calibrate(data, target_fpir, target_far, growth_limit)
    except ValueError as exc:
        raise Conflict(str(exc), code="calibration_needs_data") from None
    record["samples"]["sources"] = counts
    record["pack"] = {"name": gallery.pack_name, "version": gallery.pack_version}
    record["created_at"] = datetime.now(timezone.utc).isoformat()
    if not record["samples"]["enough_for_target"]:
        record["warning"] = (
            f"{record['samples']['non_mated_probes']} non-mated probes cannot resolve FPIR {target_fpir:g} "
            f"directly (about {record['samples']['needed_for_target']} are needed): the threshold is "
            "extrapolated from the tail of the scores; add impostor images of people not in the gallery"
        )
    if save:
        TrustStore(repo).set_calibration(gallery.id, record)
    return record

"""Fixtures of the inference tests: one default-pack pipeline per session and the t1.jpg photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.images import read_image


@pytest.fixture(scope="session")
def pipeline(default_pack: Path):
    from models.pipeline import FacePipeline

    return FacePipeline.from_pack(default_pack, ["cpu"])


@pytest.fixture(scope="session")
def t1_bgr(t1_image_path: Path) -> np.ndarray:
    return read_image(t1_image_path)


@pytest.fixture(scope="session")
def t1_faces(pipeline, t1_bgr):
    """The six faces of t1.jpg with embeddings (default pack)."""
    return pipeline.analyze(t1_bgr)

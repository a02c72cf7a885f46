"""Shared root fixtures: reference data location, an isolated MarginFace home, the default pack, photos."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Apps started by tests analyse photos in threads: the default (one analysis process per core, issue 17)
# would spawn two processes per app. tests/server/test_analysis_processes.py and the Docker tests run the
# default; any test can still pass ``analysis_processes`` explicitly.
os.environ.setdefault("MARGINFACE_ANALYSIS_PROCESSES", "0")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (research reference data and models); skips the test when it is absent."""
    path = REPO_ROOT.parent / "shared"
    if not path.is_dir():
        pytest.skip(f"reference material not available: {path} is absent")
    return path


@pytest.fixture(scope="session")
def marginface_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary ``MARGINFACE_HOME`` (packs under ``<home>/packs``) for the session, restored afterwards."""
    home = tmp_path_factory.mktemp("marginface_home")
    saved = {key: os.environ.get(key) for key in ("MARGINFACE_HOME", "MARGINFACE_PACKS_DIR")}
    os.environ["MARGINFACE_HOME"] = str(home)
    os.environ.pop("MARGINFACE_PACKS_DIR", None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def default_pack(marginface_home: Path) -> Path:
    """The offline default pack (YuNet + SFace) installed once into the session home; its folder."""
    from models.packs.install import install_pack

    return install_pack("default", progress=False)


def _insightface_image(name: str) -> Path:
    from models.packs.checks import insightface_image

    path = insightface_image(name)
    if path is None:
        pytest.skip(f"insightface sample image {name} not available (pip install --no-deps insightface)")
    return path


@pytest.fixture(scope="session")
def t1_image_path() -> Path:
    """insightface's ``t1.jpg``: a group photo with six faces."""
    return _insightface_image("t1.jpg")


@pytest.fixture(scope="session")
def aligned_crop_path() -> Path:
    """insightface's ``Tom_Hanks_54745.png``: one face already aligned to the 112×112 ArcFace template."""
    return _insightface_image("Tom_Hanks_54745.png")


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (512×512, one face) as BGR uint8."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])

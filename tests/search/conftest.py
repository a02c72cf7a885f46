"""Shared helpers for the search tests: clustered unit vectors and a migrated SQLite store."""

from __future__ import annotations

import numpy as np
import pytest

from app.store.db import make_engine
from app.store.migrate import upgrade
from app.store.repository import Repository

DIM = 32


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0, per_subject: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face ids 1.., subject ids, vectors): ``per_subject`` noisy views of each subject's centre."""
    rng = np.random.default_rng(seed)
    subjects = np.arange(n) // per_subject
    centres = unit(rng.standard_normal((subjects[-1] + 1, DIM)))
    vectors = unit(centres[subjects] + 0.25 * rng.standard_normal((n, DIM)) / np.sqrt(DIM) * 4)
    return np.arange(1, n + 1, dtype=np.int64), subjects.astype(np.int64), vectors


def views(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """New noisy views of the first ``count`` faces (queries)."""
    rng = np.random.default_rng(seed)
    return unit(vectors[:count] + 0.5 * rng.standard_normal((count, DIM)) / np.sqrt(DIM))


def exact_top1(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return ids[np.argmax(queries @ vectors.T, axis=1)]


@pytest.fixture
def repo(tmp_path) -> Repository:
    engine = make_engine(f"sqlite:///{tmp_path / 'search.db'}")
    upgrade(engine)
    return Repository(engine)

"""The analysis processes (issue 17): the same faces, crops and embeddings as in-process analysis, errors
with their codes, a shared decode budget, and a pool that recovers when a worker is killed."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

from models.analysis_pool import AnalysisPool, pool_context
from models.detectors.policy import DetectionPolicy, analyse_photo
from models.errors import InvalidImageError
from models.images import MemoryBudget


@pytest.fixture(scope="module")
def pool(default_pack: Path):
    started = AnalysisPool(default_pack, ["cpu"], 2, DetectionPolicy(), MemoryBudget(1 << 30, pool_context()))
    started.start()
    yield started
    started.shutdown()


def test_same_results_as_in_process(pool, pipeline, t1_image_path: Path, t1_phone_jpeg: bytes) -> None:
    for data in (t1_image_path.read_bytes(), t1_phone_jpeg):
        faces, crops, full, embeddings, qualities = pool.submit(data, 20, embed=True).result(timeout=120)
        ref_faces, ref_crops, ref_full = analyse_photo(pipeline, data, DetectionPolicy(), max_faces=20)
        assert full == ref_full and len(faces) == len(ref_faces) >= 6
        np.testing.assert_allclose([f.box for f in faces], [f.box for f in ref_faces], atol=1e-3)
        np.testing.assert_array_equal(crops, ref_crops)
        reference = pipeline.embed_crops(ref_crops)
        assert np.min(np.sum(embeddings * reference, axis=1)) > 0.9999
        assert len(qualities) == len(faces)
        # without ``embed`` the worker only analyses
        assert pool.submit(data, 20).result(timeout=120)[3] is None


def test_errors_keep_their_codes(pool) -> None:
    with pytest.raises(InvalidImageError) as caught:
        pool.submit(b"\xff\xd8\xff\xe0 not a jpeg at all", 20).result(timeout=60)
    assert caught.value.code == "corrupt_image"
    with pytest.raises(InvalidImageError) as caught:
        pool.submit(b"x" * 2000, 20, max_bytes=1000).result(timeout=60)
    assert caught.value.code == "image_too_large"


def test_killed_worker_breaks_only_until_restart(default_pack: Path, t1_image_path: Path) -> None:
    pool = AnalysisPool(default_pack, ["cpu"], 2, DetectionPolicy(), MemoryBudget(1 << 30, pool_context()))
    try:
        pids = pool.start()
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)
        data = t1_image_path.read_bytes()
        deadline = time.monotonic() + 30
        with pytest.raises(BrokenProcessPool):
            while time.monotonic() < deadline:
                pool.submit(data, 20).result(timeout=60)
        generation = pool.generation
        pool.restart(generation)
        pool.restart(generation)  # a second request that saw the same break does not restart again
        assert pool.generation == generation + 1
        faces = pool.submit(data, 20).result(timeout=120)[0]
        assert len(faces) >= 6
    finally:
        pool.shutdown()


def _hold(budget: MemoryBudget, amount: int) -> int:
    with budget.reserve(amount):
        time.sleep(0.05)
        return budget.used


def test_shared_budget_bounds_concurrent_reservations() -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    budget = MemoryBudget(100, context)
    with ThreadPoolExecutor(8) as threads:
        seen = list(threads.map(lambda a: _hold(budget, a), [40, 40, 40, 30, 70, 100, 250, 10] * 3))
    assert max(seen) <= 100 and budget.used == 0 and budget.peak <= 100
    assert budget.peak >= 80  # two 40s did run side by side

"""The analysis processes (issue 17): the same faces, crops and embeddings as in-process analysis, errors
with their codes, a shared decode budget, and a pool that recovers when a worker is killed."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.analysis_pool import AnalysisPool, WorkerLost, pool_context
from models.detectors.policy import DetectionPolicy, analyse_photo
from models.errors import InvalidImageError
from models.shared_budget import SharedBudget


def _new_pool(default_pack: Path) -> AnalysisPool:
    return AnalysisPool(default_pack, ["cpu"], 2, DetectionPolicy(), SharedBudget(1 << 30, 2, pool_context()))


def _in_loop(pool: AnalysisPool, body) -> object:
    """Run ``body(pool)`` (a coroutine function) on a fresh event loop, then shut the pool down there."""

    async def main() -> object:
        try:
            return await body(pool)
        finally:
            pool.shutdown()

    return asyncio.run(main())


def test_same_results_as_in_process(default_pack: Path, pipeline, t1_image_path: Path,
                                    t1_phone_jpeg: bytes) -> None:
    pool = _new_pool(default_pack)
    assert len(pool.start()) == 2

    async def body(pool: AnalysisPool) -> None:
        for data in (t1_image_path.read_bytes(), t1_phone_jpeg):
            faces, crops, full, embeddings, qualities = await pool.analyse(data, 20, embed=True)
            ref_faces, ref_crops, ref_full = analyse_photo(pipeline, data, DetectionPolicy(), max_faces=20)
            assert full == ref_full and len(faces) == len(ref_faces) >= 6
            np.testing.assert_allclose([f.box for f in faces], [f.box for f in ref_faces], atol=1e-3)
            np.testing.assert_array_equal(crops, ref_crops)
            reference = pipeline.embed_crops(ref_crops)
            assert np.min(np.sum(embeddings * reference, axis=1)) > 0.9999
            assert len(qualities) == len(faces)
            # without ``embed`` the worker only analyses
            assert (await pool.analyse(data, 20))[3] is None
        # errors keep their codes, and the worker goes on
        with pytest.raises(InvalidImageError) as caught:
            await pool.analyse(b"\xff\xd8\xff\xe0 not a jpeg at all", 20)
        assert caught.value.code == "corrupt_image"
        with pytest.raises(InvalidImageError) as caught:
            await pool.analyse(b"x" * 2000, 20, max_bytes=1000)
        assert caught.value.code == "image_too_large"
        # many at once: every answer belongs to its own photo, in whatever order the workers finish
        photos = [t1_image_path.read_bytes(), t1_phone_jpeg, b"junk"] * 4
        random.Random(3).shuffle(photos)
        answers = await asyncio.gather(*(pool.analyse(p, 20) for p in photos), return_exceptions=True)
        for photo, answer in zip(photos, answers, strict=True):
            if photo == b"junk":
                assert isinstance(answer, InvalidImageError)
            else:
                assert answer[2] == cv2.imdecode(np.frombuffer(photo, np.uint8), 1).shape[1::-1]

    _in_loop(pool, body)


async def _wait_busy(pool: AnalysisPool) -> int:
    for _ in range(5000):
        if pool.busy_pids():
            return pool.busy_pids()[0]
        await asyncio.sleep(0.001)
    raise AssertionError("no worker took the photo")


def test_killed_worker_costs_only_its_photo(default_pack: Path, t1_image_path: Path,
                                            t1_phone_jpeg: bytes) -> None:
    pool = _new_pool(default_pack)
    first = pool.start()

    async def body(pool: AnalysisPool) -> None:
        data = t1_image_path.read_bytes()
        # four photos on two workers: each holds two (one running, one waiting behind it)
        running = [asyncio.ensure_future(pool.analyse(t1_phone_jpeg, 20)) for _ in range(4)]
        victim = await _wait_busy(pool)
        os.kill(victim, signal.SIGKILL)
        results = await asyncio.gather(*running, return_exceptions=True)
        lost = [r for r in results if isinstance(r, WorkerLost)]
        assert len(lost) == 1 and str(victim) in str(lost[0])  # the one it ran; the one queued went elsewhere
        assert all(len(r[0]) >= 6 for r in results if not isinstance(r, BaseException))
        assert pool.replaced == 1
        faces = (await pool.analyse(data, 20))[0]
        assert len(faces) >= 6
        for _ in range(600):  # the replacement loads its models, then takes photos too
            if len(pool.pids()) == 2 and victim not in pool.pids() and pool.ready_count() == 2:
                break
            await asyncio.sleep(0.1)
        assert pool.ready_count() == 2 and victim not in pool.pids() and set(pool.pids()) != set(first)
        # an idle worker killed: the pool notices from its socket, no photo is lost
        os.kill(pool.pids()[0], signal.SIGKILL)
        await asyncio.sleep(0.5)
        assert pool.replaced == 2
        answers = await asyncio.gather(*(pool.analyse(data, 20) for _ in range(4)))
        assert all(len(a[0]) >= 6 for a in answers)

    _in_loop(pool, body)


def _hold(budget: SharedBudget, slot: int, amount: int, seconds: float, seen) -> None:
    budget.bind(slot)
    with budget.reserve(amount):
        seen.put(budget.used)
        time.sleep(seconds)


def test_shared_budget_bounds_processes_and_survives_a_killed_holder() -> None:
    context = pool_context()
    budget = SharedBudget(100, 4, context)
    seen = context.Queue()
    try:
        workers = [context.Process(target=_hold, args=(budget, i, a, 1.0, seen)) for i, a in
                   enumerate([40, 40, 40, 250])]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        values = [seen.get(timeout=5) for _ in workers]
        assert max(values) <= 100 and budget.used == 0 and 80 <= budget.peak <= 100
        # a holder killed inside its reservation: the pool clears its slot and the others go on
        holder = context.Process(target=_hold, args=(budget, 0, 100, 600, seen))
        holder.start()
        assert seen.get(timeout=60) == 100
        waiter = context.Process(target=_hold, args=(budget, 1, 50, 0.0, seen))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and budget.used == 100  # waits for room
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=30)
        budget.clear(0)
        assert seen.get(timeout=30) == 50
        waiter.join(timeout=30)
        assert waiter.exitcode == 0 and budget.used == 0
    finally:
        budget.remove()

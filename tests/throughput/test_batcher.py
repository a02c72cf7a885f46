"""The embedding micro-batcher with the new topology: no wait at concurrency 1, batches side by side on
several workers, larger batches under load, rows always back to their request."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import numpy as np

from app.batching import MicroBatcher


def test_a_lone_request_does_not_wait_for_company():
    async def scenario() -> float:
        batcher = MicroBatcher(lambda x: x + 1, max_items=32, max_wait_ms=2000)
        await batcher.submit(np.zeros((1, 2)))  # start-up
        started = time.perf_counter()
        for _ in range(3):
            await batcher.submit(np.zeros((1, 2)))
        await batcher.stop()
        return (time.perf_counter() - started) / 3

    assert asyncio.run(scenario()) < 0.5  # with the old collector each would wait max_wait_ms = 2 s


def test_workers_run_batches_side_by_side():
    barrier = threading.Barrier(2, timeout=10)  # passes only when two batches run at the same time

    def fn(x: np.ndarray) -> np.ndarray:
        barrier.wait()
        return x * 2

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(fn, max_items=1, max_wait_ms=0, workers=2)
        out = await asyncio.gather(*(batcher.submit(np.full((1, 2), i, np.float32)) for i in range(4)))
        await batcher.stop()
        return out

    outputs = asyncio.run(scenario())
    assert [float(o[0, 0]) for o in outputs] == [0, 2, 4, 6]


def test_batches_grow_while_every_worker_is_busy():
    sizes: list[int] = []

    def slow(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        time.sleep(0.05)
        return x

    async def scenario() -> None:
        batcher = MicroBatcher(slow, max_items=32, max_wait_ms=5, workers=2)

        async def client(i: int) -> None:
            for _ in range(5):
                await batcher.submit(np.full((1, 1), i, np.float32))

        await asyncio.gather(*(client(i) for i in range(16)))
        await batcher.stop()

    asyncio.run(scenario())
    assert sum(sizes) == 80 and sum(sizes) / len(sizes) > 2


def test_random_requests_get_their_own_rows_back():
    rng = random.Random(17)

    def fn(x: np.ndarray) -> np.ndarray:
        time.sleep(rng.random() * 0.005)
        return x * 3 + 1

    async def scenario() -> bool:
        batcher = MicroBatcher(fn, max_items=rng.randint(1, 12), max_wait_ms=rng.random() * 5, workers=3)

        async def request(i: int) -> bool:
            await asyncio.sleep(rng.random() * 0.02)
            items = np.full((rng.randint(1, 6), 3), i, np.float32)
            return bool(np.array_equal(await batcher.submit(items), items * 3 + 1))

        results = await asyncio.gather(*(request(i) for i in range(60)))
        await batcher.stop()
        return all(results)

    for _ in range(3):
        assert asyncio.run(scenario())

"""Micro-batching: crops from concurrent requests are embedded together, off the event loop.

Requests ``submit`` N×112×112×3 crops and await their embeddings. A collector task waits for a free
worker (``workers`` threads, one per pipeline of the thread topology, see models/topology.py), takes
the crops queued by then, up to ``max_items``, and runs the embedding function on that worker. It waits up
to ``max_wait_ms`` for more crops only while another batch is already running, so a lone request
(concurrency 1) never waits; under load the batches fill while every worker is busy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

EmbedFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Pending:
    items: np.ndarray
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collect up to ``max_items`` items or ``max_wait_ms``, then run ``fn`` on them in a worker thread."""

    def __init__(
        self,
        fn: EmbedFn,
        *,
        max_items: int = 32,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int, float], None] | None = None,
        workers: int = 1,
    ) -> None:
        self.fn = fn
        self.max_items = max_items
        self.max_wait_s = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.workers = max(1, int(workers))
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._free: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        if self._task is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="embed")
            self._free = asyncio.Semaphore(self.workers)
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for task in list(self._running):
            task.cancel()
        self._running.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(self, items: np.ndarray) -> np.ndarray:
        """The function's output for ``items`` (rows in order), computed in some batch."""
        if len(items) == 0:
            return self.fn(items)
        self.start()
        assert self._queue is not None
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(items, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None and self._free is not None
        carry: _Pending | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            await self._free.acquire()  # crops keep queueing while every worker is busy
            busy = len(self._running) > 0
            batch, count = [first], len(first.items)
            deadline = time.monotonic() + (self.max_wait_s if busy else 0.0)
            while count < self.max_items:
                if not self._queue.empty():
                    nxt = self._queue.get_nowait()
                else:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                if count + len(nxt.items) > self.max_items:
                    carry = nxt  # starts the next batch; a single oversized request still runs alone
                    break
                batch.append(nxt)
                count += len(nxt.items)
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if self._free is not None:
            self._free.release()

    async def _execute(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # a cancelled request's crops are skipped
        if not live:
            return
        stacked = np.concatenate([p.items for p in live])
        started = time.perf_counter()
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._executor, self.fn, stacked)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(stacked), time.perf_counter() - started)
        offset = 0
        for p in live:
            n = len(p.items)
            if not p.future.done():
                p.future.set_result(out[offset : offset + n])
            offset += n

"""Decode, detect and align in worker processes: photos side by side on every core (issue 17).

Threads cannot run two photos side by side: the Python between the C calls (letterbox, anchor decoding,
landmark mapping, quality) holds the GIL, and on 2 cores two single-thread pipelines in threads of one process
reach 0.65-0.86 of twice one pipeline's rate, two processes 0.87-1.0 (the single pipeline they are compared
with drifts by ±20 % on these machines). So the server hands each photo's bytes to one of ``processes``
workers (``models.analysis_worker``), each with its own single-thread pipeline, and gets back the faces, the
aligned 112×112 crops and, when asked (``/identify`` embeds every face it finds), their embeddings: one
photo's whole pipeline in one process, as the single-thread unit runs it.

The dispatch lives on the event loop: each worker is a socket the loop reads (no feeder or manager threads,
whose wake-ups cost the server's process ~0.5 ms of CPU a photo under ``ProcessPoolExecutor``, and preempted
the workers). A worker holds at most ``DEPTH`` photos (one running, one waiting in its socket, so it never
idles between photos); the rest wait here and go to whichever worker frees up first.

A worker that dies (killed for memory, a crash) costs only the photo it was running: that request gets
``WorkerLost``, the photos queued behind it go to the other workers, and a new worker replaces it.
The decode memory budget is shared by the workers (``SharedBudget``, one slot per worker: a dead worker's
reservation is given back).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import pickle
import socket
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from models.analysis_worker import HEADER, Embed, Result, frame, read_frame, serve
from models.shared_budget import SharedBudget

log = logging.getLogger("marginface.analysis")

DEPTH = 2  # photos a worker holds: the one it runs and the next
MAX_EARLY_DEATHS = 3  # replacements that died before ready, in a row, before the pool stops replacing


class WorkerLost(RuntimeError):
    """The worker process analysing this photo stopped (or no worker is left)."""


def pool_context():
    """The analysis workers' multiprocessing context: spawn (ONNX Runtime sessions must not cross a fork)."""
    return multiprocessing.get_context("spawn")


@dataclass
class _Task:
    id: int
    frame: bytes
    future: asyncio.Future


@dataclass(eq=False)
class _Worker(asyncio.Protocol):
    pool: AnalysisPool
    process: multiprocessing.process.BaseProcess
    sock: socket.socket
    slot: int
    ready: bool = False
    transport: asyncio.Transport | None = None
    held: deque[_Task] = field(default_factory=deque)  # in the order sent: the first one is running
    buffer: bytearray = field(default_factory=bytearray)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pool._dispatch()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            size = HEADER.unpack_from(self.buffer)[0]
            if len(self.buffer) < HEADER.size + size:
                return
            message = pickle.loads(self.buffer[HEADER.size : HEADER.size + size])
            del self.buffer[: HEADER.size + size]
            self.pool._received(self, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool._lost(self)


class AnalysisPool:
    """``processes`` worker processes that run ``analyse_photo`` for one pack."""

    def __init__(
        self, pack: str | Path, providers: list[str] | None, processes: int, policy, budget: SharedBudget,
        first_slot: int = 0,
    ) -> None:
        """``budget``: made with ``pool_context()``; worker i charges its slot ``first_slot + i``."""
        self._context = pool_context()
        self.processes = max(1, int(processes))
        if first_slot + self.processes > budget.slots:
            raise ValueError(f"the budget has {budget.slots} slots, not {first_slot + self.processes}")
        self.budget = budget
        self._first_slot = first_slot
        self._args = (str(pack), providers, policy, budget)
        self._workers: list[_Worker] = []
        self._pending: deque[_Task] = deque()
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early_deaths = 0
        self._closed = False
        self._connecting: set[asyncio.Task] = set()
        self.replaced = 0  # workers replaced after dying

    def _spawn(self, slot: int) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self._context.Process(target=serve, args=(theirs, slot, *self._args), daemon=True,
                                        name="marginface-analysis")
        process.start()
        theirs.close()
        return _Worker(self, process, ours, slot)

    def start(self, timeout: float = 120.0) -> list[int]:
        """Start every worker and wait until each has loaded its models; their pids. Blocking: call it
        before the pool is used from an event loop."""
        self._workers = [self._spawn(self._first_slot + i) for i in range(self.processes)]
        for worker in self._workers:
            worker.sock.settimeout(timeout)
            try:
                hello = read_frame(worker.sock)
            except TimeoutError:
                hello = None
            if not (isinstance(hello, tuple) and hello[0] == "ready"):
                self.shutdown()
                raise TimeoutError(f"analysis worker not ready after {timeout:.0f} s (exit code "
                                   f"{worker.process.exitcode})")
            worker.sock.settimeout(None)
            worker.ready = True
        return self.pids()

    @property
    def gave_up(self) -> bool:
        """Whether the pool stopped replacing workers (they kept dying before they were ready)."""
        return self._early_deaths >= MAX_EARLY_DEATHS

    def pids(self) -> list[int]:
        """The live workers' process ids."""
        return sorted(w.process.pid for w in self._workers if w.process.pid is not None)

    def ready_count(self) -> int:
        """Workers ready for photos (a replacement is not until it has loaded its models)."""
        return sum(1 for w in self._workers if w.ready and w.transport is not None)

    def busy_pids(self) -> list[int]:
        """The pids of the workers running a photo now."""
        return sorted(w.process.pid for w in self._workers if w.held and w.process.pid is not None)

    async def analyse(self, data: bytes, max_faces: int | None = None, *, embed: Embed = False,
                      **limits) -> Result:
        """``(faces in full-resolution coordinates, aligned crops, (width, height), embeddings, qualities)``;
        ``embed``: every crop embedded and its quality assessed in the worker (else None for both);
        ``"largest"``: only the largest face's embedding (1×D), no qualities.
        Raises the analysis's own errors, or ``WorkerLost``."""
        await self._attach()
        if not self._workers:
            raise WorkerLost("no analysis worker is running")
        task_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Task(task_id, frame((task_id, data, max_faces, limits, embed)), future))
        self._dispatch()
        return await future

    async def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None:
            raise RuntimeError("an AnalysisPool serves one event loop")
        self._loop = loop
        for worker in self._workers:
            await self._connect(worker)

    async def _connect(self, worker: _Worker) -> None:
        assert self._loop is not None
        await self._loop.create_unix_connection(lambda: worker, sock=worker.sock)

    def _dispatch(self) -> None:
        while self._pending:
            ready = [w for w in self._workers if w.ready and w.transport is not None]
            worker = min(ready, key=lambda w: len(w.held), default=None)
            if worker is None or len(worker.held) >= DEPTH:
                return
            task = self._pending.popleft()
            if task.future.done():  # its request was cancelled while it waited
                continue
            worker.held.append(task)
            worker.transport.write(task.frame)  # kept: it is sent again if this worker dies first

    def _received(self, worker: _Worker, message: object) -> None:
        if isinstance(message, tuple) and message[0] == "ready":
            worker.ready, self._early_deaths = True, 0
        else:
            task_id, ok, value = message  # type: ignore[misc]
            task = worker.held.popleft()
            assert task.id == task_id, "a worker answers in the order it was asked"
            if not task.future.done():
                if ok:
                    task.future.set_result(value)
                else:
                    task.future.set_exception(value)
        self._dispatch()

    def _lost(self, worker: _Worker) -> None:
        if worker not in self._workers:
            return
        self._workers.remove(worker)
        worker.process.join(timeout=1.0)
        if worker.process.is_alive():  # its socket closed, yet it runs: it must not charge the slot again
            worker.process.kill()
            worker.process.join(timeout=5.0)
        self.budget.clear(worker.slot)
        running = worker.held.popleft() if worker.held else None
        self._pending.extendleft(reversed(worker.held))  # never started: they go to the other workers
        worker.held.clear()
        if running is not None and not running.future.done():
            running.future.set_exception(WorkerLost(
                f"the analysis worker (pid {worker.process.pid}) stopped with exit code "
                f"{worker.process.exitcode} while analysing this photo"))
        if self._closed:
            return
        self._early_deaths += 0 if worker.ready else 1
        if self._early_deaths >= MAX_EARLY_DEATHS:
            log.error("analysis workers keep dying before they are ready; not replacing them any more")
        else:
            log.warning("analysis worker %s stopped (exit code %s); starting a new one",
                        worker.process.pid, worker.process.exitcode)
            replacement = self._spawn(worker.slot)
            self._workers.append(replacement)
            self.replaced += 1
            assert self._loop is not None
            connecting = self._loop.create_task(self._connect(replacement))
            self._connecting.add(connecting)
            connecting.add_done_callback(self._connecting.discard)
        if not self._workers:
            while self._pending:
                task = self._pending.popleft()
                if not task.future.done():
                    task.future.set_exception(WorkerLost("no analysis worker is running"))
        self._dispatch()

    def shutdown(self) -> None:
        """Close every worker's socket (each exits after its current photo) and reap them."""
        self._closed = True
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.transport is not None:
                worker.transport.close()
            else:
                worker.sock.close()
        for worker in workers:
            worker.process.join(timeout=2.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=2.0)
        for task in self._pending:
            if not task.future.done():
                task.future.cancel()
        self._pending.clear()

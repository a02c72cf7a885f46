"""A decode memory budget shared by worker processes that survives a worker's death (issue 17).

``MemoryBudget`` with a multiprocessing context keeps one counter under one lock: a worker killed while it
holds a reservation (the kernel's OOM killer strikes during the largest decodes) leaks that reservation for
good, and one killed inside the lock leaves every other worker waiting on it. Here each worker charges its
own slot, the pool clears a dead worker's slot (``clear``), and the lock is an ``flock`` on a file, which the
kernel releases when its holder dies. Waiting for room polls (every 2 ms): it only happens when large photos
arrive together.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

POLL_S = 0.002


class SharedBudget:
    """Bytes that the decodes of ``slots`` processes may hold together; a process charges the slot it is
    bound to (``bind``)."""

    def __init__(self, capacity: int, slots: int, context) -> None:
        self.capacity = max(1, int(capacity))
        self._held = context.Array("q", max(1, int(slots)), lock=False)
        self._peak = context.Value("q", 0, lock=False)
        handle, self._lock_path = tempfile.mkstemp(prefix="marginface-decode-budget-")
        os.close(handle)
        self._slot = 0
        self._fd: int | None = None  # opened per process (a file descriptor does not travel with pickling)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_fd": None}

    @property
    def slots(self) -> int:
        return len(self._held)

    @property
    def used(self) -> int:
        return int(sum(self._held))

    @property
    def peak(self) -> int:
        return int(self._peak.value)

    def bind(self, slot: int) -> SharedBudget:
        """Charge this process's reservations to ``slot`` (one slot per worker)."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} is outside 0..{self.slots - 1}")
        self._slot = slot
        return self

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._fd is None:
            self._fd = os.open(self._lock_path, os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` (at most the capacity: a larger request waits for the whole budget) for the
        ``with`` block."""
        amount = min(max(0, int(nbytes)), self.capacity)
        while True:
            with self._locked():
                used = sum(self._held)
                if used + amount <= self.capacity:
                    self._held[self._slot] += amount
                    self._peak.value = max(self._peak.value, used + amount)
                    break
            time.sleep(POLL_S)
        try:
            yield
        finally:
            with self._locked():
                self._held[self._slot] -= amount

    def clear(self, slot: int) -> None:
        """Give back what ``slot`` held: its process is gone."""
        with self._locked():
            self._held[slot] = 0

    def remove(self) -> None:
        """Delete the lock file (when no process uses the budget any more)."""
        try:
            os.unlink(self._lock_path)
        except FileNotFoundError:
            pass

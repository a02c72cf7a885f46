"""Background loops that touch the store: back off during an outage and log once per state change."""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.store.errors import StoreUnavailable


def is_outage(exc: BaseException) -> bool:
    """A store that is down or unreachable (not a bug): no traceback is worth logging for it."""
    return isinstance(exc, StoreUnavailable | PoolTimeout) or (
        isinstance(exc, DBAPIError) and (exc.connection_invalidated or "connect" in str(exc.orig).lower())
    )


class LoopHealth:
    """``delay = health.failed(exc)`` in the loop's ``except``, ``health.ok()`` after a good round.

    The first failure logs one line (a traceback only when it is not an outage), recovery logs one line,
    and the delay doubles from ``interval`` up to ``max_delay``.
    """

    def __init__(self, log: logging.Logger, what: str, interval: float, max_delay: float = 2.0) -> None:
        self.log = log
        self.what = what
        self.interval = interval
        self.max_delay = max(max_delay, interval)
        self.delay = interval
        self.failing = False

    def failed(self, exc: BaseException) -> float:
        self.delay = min(max(self.delay * 2, self.interval), self.max_delay)
        if not self.failing:
            self.failing = True
            if is_outage(exc):
                self.log.warning("%s paused: %s (retrying with backoff)", self.what, exc)
            else:
                self.log.exception("%s failed (retrying with backoff)", self.what)
        return self.delay

    def ok(self) -> float:
        if self.failing:
            self.failing = False
            self.log.warning("%s resumed: the store answers again", self.what)
        self.delay = self.interval
        return self.delay

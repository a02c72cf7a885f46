"""Reads on ``/identify``'s hot path as plain SQL (issue 17).

The ORM spends ~0.5 ms of Python on every statement (compiling, row objects, a transaction each); at
concurrency 16 those reads were a quarter of the server process's own CPU, which competes with the analysis
workers for the same cores. The same rows read through ``Connection.exec_driver_sql`` cost ~0.07 ms each and
keep SQLAlchemy's pooling, pre-ping and error wrapping (PostgreSQL). On a SQLite file, each thread reads
through its own long-lived ``sqlite3`` connection in autocommit mode instead: no pool checkout and no
SQLAlchemy result objects (the pool checkout, connection and result set-up were still half of these reads'
cost under load). Every read is as fresh as the ORM's (no cache: each statement sees the last commit, so a
subject deleted or a key revoked in another process is gone from the next answer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import Connection, Engine

from app.store.errors import StoreUnavailable
from app.store.repository import outage_text, store_errors


def _sqlite_file(engine: Engine) -> str | None:
    """The database file of a plain SQLite file URL (None: another dialect, in-memory or URI options)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.query or url.database in (None, "", ":memory:"):
        return None
    return url.database


class HotReads:
    """Plain-SQL reads through the engine's pool; errors map to ``StoreUnavailable`` as in the repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sqlite = _sqlite_file(engine)
        self._local = threading.local()

    @contextmanager
    def connection(self) -> Iterator[Connection | sqlite3.Connection]:
        if self._sqlite is None:
            with store_errors(), self.engine.connect() as conn:
                yield conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(  # mode=rw: a missing file is an outage, never a new empty store
                    f"file:{pathname2url(self._sqlite)}?mode=rw", uri=True, timeout=30, isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the store is unreachable: {type(exc).__name__}") from exc
            self._local.conn = conn
        yield conn

    def rows(self, conn: Connection, sql: str, params: Sequence[Any] = (), in_values: Sequence[Any] = ()):
        """``sql`` with ``?`` placeholders (written once for every dialect); ``IN (*)`` expands to
        ``in_values``."""
        if "(*)" in sql:
            sql = sql.replace("(*)", "(" + ", ".join("?" * len(in_values)) + ")")
            params = (*params, *in_values)
        if isinstance(conn, sqlite3.Connection):
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.OperationalError as exc:
                if outage_text(str(exc)):
                    raise StoreUnavailable(f"the store is unreachable: {type(exc).__name__}") from exc
                raise
        if self.mark != "?":
            sql = sql.replace("?", self.mark)
        return conn.exec_driver_sql(sql, tuple(params)).all()

    def subject_names(self, conn: Connection, subject_ids: Sequence[int]) -> dict[int, str]:
        if not subject_ids:
            return {}
        found = self.rows(conn, "SELECT id, name FROM subjects WHERE id IN (*)", (), list(subject_ids))
        return {int(sid): name for sid, name in found}


def json_value(value: Any) -> Any:
    """A JSON column as the driver returns it: text on SQLite, already parsed on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value

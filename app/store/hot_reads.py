"""Reads on ``/identify``'s hot path as plain SQL on one pooled connection (issue 17).

The ORM spends ~0.5 ms of Python on every statement (compiling, row objects, a transaction each); at
concurrency 16 those reads were a quarter of the server process's own CPU, which competes with the analysis
workers for the same cores. The same rows read through ``Connection.exec_driver_sql`` cost ~0.07 ms each,
keep SQLAlchemy's pooling, pre-ping and error wrapping, and are as fresh as the ORM's (no cache: a subject
deleted in another process is gone from the answer at once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from app.store.repository import store_errors


class HotReads:
    """Plain-SQL reads through the engine's pool; errors map to ``StoreUnavailable`` as in the repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with store_errors(), self.engine.connect() as conn:
            yield conn

    def rows(self, conn: Connection, sql: str, params: Sequence[Any] = (), in_values: Sequence[Any] = ()):
        """``sql`` with ``?`` placeholders (written once for every dialect); ``IN (*)`` expands to
        ``in_values``."""
        if "(*)" in sql:
            sql = sql.replace("(*)", "(" + ", ".join("?" * len(in_values)) + ")")
            params = (*params, *in_values)
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

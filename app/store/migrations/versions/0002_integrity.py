"""Ids never reused; change log in commit order (issue 10).

SQLite hands out ``max(id) + 1`` for a plain INTEGER PRIMARY KEY, so deleting the newest face let the next
enrollment take its id (and the change log confused the two). The tables are rebuilt with AUTOINCREMENT, and
each table's sequence starts above every id the change log still mentions. ``app.store.migrate`` turns
foreign keys off around the migration (the SQLite way to rebuild a table without cascading deletes).
PostgreSQL's serial sequences never hand out an id twice: nothing to rebuild there.

``store_meta`` records how far the change log was pruned, so a worker that was behind reloads instead of
drifting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# table → the change-log column that also holds its ids
_TABLES = {"galleries": "gallery_id", "subjects": "subject_id", "faces": "face_id", "changes": "id"}


def _sqlite_rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0002 rebuilds tables and must run with foreign keys off (use app.store.migrate)"
        )
    for table in _TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    if not autoincrement:
        return
    for table, column in _TABLES.items():
        high = bind.exec_driver_sql(
            f"SELECT max(m) FROM (SELECT max(id) AS m FROM {table} "
            f"UNION ALL SELECT max({column}) FROM changes)"
        ).scalar()
        if not high:
            continue
        bind.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        bind.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, int(high)))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(autoincrement=True)
    meta = op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(meta, [{"key": "changes_pruned_through", "value": 0}])


def downgrade() -> None:
    op.drop_table("store_meta")
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(autoincrement=False)

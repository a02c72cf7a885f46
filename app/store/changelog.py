"""Reads and pruning of the change log: what other server processes replay to keep their indexes in step
(``app.search.sync``). Mixed into ``Repository``, whose writes append to it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.store.models import Change, StoreMeta, utcnow

PRUNED_KEY = "changes_pruned_through"


class _Sessions(Protocol):
    def session(self) -> AbstractContextManager[Session]: ...


class ChangeLogReads:
    """The change-log half of the repository (``session`` comes from ``Repository``)."""

    def changes_after(self: _Sessions, after_id: int, limit: int = 5000) -> list[Change]:
        with self.session() as s:
            return list(
                s.scalars(select(Change).where(Change.id > after_id).order_by(Change.id).limit(limit))
            )

    def changes_since(
        self: _Sessions, after_id: int, *, also: Sequence[int] = (), gallery_id: int | None = None,
        limit: int = 5000,
    ) -> list[Change]:
        """Changes with id > ``after_id`` (at most ``limit``) plus those with an id in ``also``, by id."""
        condition = Change.id > after_id
        if also:
            condition = condition | Change.id.in_(list(also))
        query = select(Change).where(condition)
        if gallery_id is not None:
            query = query.where(Change.gallery_id == gallery_id)
        with self.session() as s:
            return list(s.scalars(query.order_by(Change.id).limit(limit + len(also))))

    def change_ids_between(self: _Sessions, low: int, high: int) -> set[int]:
        """Ids of the changes in (low, high]."""
        with self.session() as s:
            rows = s.scalars(select(Change.id).where(Change.id > low, Change.id <= high))
            return {int(i) for i in rows}

    def pruned_through(self: _Sessions) -> int:
        """The highest change id ever pruned (0: nothing pruned)."""
        with self.session() as s:
            return int(s.scalar(select(StoreMeta.value).where(StoreMeta.key == PRUNED_KEY)) or 0)

    def last_change_id(self: _Sessions) -> int:
        """The change-log position now: the highest change id, pruned ones included (ids never restart)."""
        with self.session() as s:
            newest = int(s.scalar(select(func.max(Change.id))) or 0)
            pruned = int(s.scalar(select(StoreMeta.value).where(StoreMeta.key == PRUNED_KEY)) or 0)
            return max(newest, pruned)

    def prune_changes(self: _Sessions, older_than: timedelta) -> int:
        """Forget change-log entries older than ``older_than`` and record the highest id forgotten.

        A process whose position is below that id missed changes and reloads its indexes from the store.
        """
        with self.session() as s:
            through = s.scalar(select(func.max(Change.id)).where(Change.created_at < utcnow() - older_than))
            if not through:
                return 0
            result = s.execute(delete(Change).where(Change.id <= through))
            s.execute(  # the row is created by migration 0002; ids only grow, so "through" only grows
                update(StoreMeta)
                .where(StoreMeta.key == PRUNED_KEY, StoreMeta.value < through)
                .values(value=through)
            )
            return int(result.rowcount or 0)

"""Blocking store reads and small searches from async code: on the event loop when they are as short as a
function call, else in a worker thread (issue 17).

A thread hop costs the server's process more CPU than a SQLite point read (~0.05-0.1 ms): measured at
concurrency 16 on 2 cores, running ``/identify``'s three hops (key check, gallery, search and store reads)
on the loop cut the server's own CPU from ~6.6 to ~4.8 ms a request, CPU the analysis workers then have.
PostgreSQL reads, searches of large or remote indexes and index builds stay in threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from app.store.models import Gallery
from app.store.repository import Repository

T = TypeVar("T")

INLINE_SEARCH_MAX = 20_000  # faces: an exact search over this many takes well under a millisecond


async def store_read(repo: Repository, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)``: on the loop when the store answers in-process, else in a worker thread."""
    if repo.reads_inline:
        return read(*args)
    return await asyncio.to_thread(read, *args)


def search_inline(repo: Repository, index: Any, gallery: Gallery) -> bool:
    """Whether a search of ``gallery``'s loaded ``index`` and its store reads may run on the loop: not when
    the index would be built first (None: not loaded; or built for another pack than the gallery's)."""
    return (
        repo.reads_inline
        and index is not None
        and getattr(index, "backend", None) == "faiss"
        and getattr(index, "pack", None) in (None, (gallery.pack_name, gallery.pack_version))
        and index.size <= INLINE_SEARCH_MAX
    )

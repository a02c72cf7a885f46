"""One pack per answer: an index is searched only with probes embedded by the pack whose embeddings it holds.

A migration switches a gallery in one store transaction, but a request reads the gallery (and so picks the
engine that embeds its probes) before it reads the gallery's index. The index registry tags each index
with the pack it was built from (``index.pack``); ``index_for_pack`` checks the tag against the gallery
row the request used.
"""

from __future__ import annotations

from typing import Any

from app.services.errors import Conflict
from app.store.models import Gallery


class PackSwitched(Conflict):
    """The gallery moved to another pack after the request read it: embed again with ``gallery``'s."""

    def __init__(self, gallery: Gallery) -> None:
        super().__init__(
            f"gallery {gallery.name!r} switched to {gallery.pack_name} {gallery.pack_version}; retry",
            code="gallery_switched",
        )
        self.gallery = gallery


def index_for_pack(galleries: Any, gallery: Gallery) -> Any:
    """The index of ``gallery`` holding embeddings of ``gallery``'s pack (blocking: store reads).

    An index built before a switch this process has not replayed yet is rebuilt; when the gallery itself
    moved on since the caller read it, ``PackSwitched`` carries the current row (the caller embeds its
    probes again with that pack's engine, or answers 409 ``gallery_switched``).
    """
    index = galleries.indexes.get(gallery)
    held = getattr(index, "pack", None)
    if held is None or held == (gallery.pack_name, gallery.pack_version):
        return index
    current = galleries.get(gallery.name)
    if held != (current.pack_name, current.pack_version):  # the index predates the switch: rebuild
        galleries.indexes.drop(current.id)
        index = galleries.indexes.get(current)
        if getattr(index, "pack", None) in (None, (gallery.pack_name, gallery.pack_version)):
            return index
    raise PackSwitched(current)

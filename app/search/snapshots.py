"""Gallery indexes saved to disk with the change-log position they include (fast start).

One folder per gallery, ``<dir>/gallery-<id>/``: the vector table as raw ``.npy`` arrays (ids, subjects,
float vectors), the FAISS index (``faiss.write_index``) when there is one, and ``meta.json`` — written last —
with the position, the gallery's identity (id, name, creation time, dimension, index kind) and each file's
size and CRC-32. A save goes to a temporary folder renamed into place, so a crash mid-save leaves the old
snapshot. ``load`` returns None when there is no snapshot and raises ``SnapshotError`` for a corrupt or
foreign one; the registry then rebuilds from the store (and treats a position beyond the store's log, or
before its pruned part, as stale).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from app.search import factory
from app.search.factory import IndexParams
from app.search.gallery_index import GalleryIndex
from app.store.models import Gallery

log = logging.getLogger("marginface.search")
FORMAT = 1
CHUNK = 64 * 2**20


class SnapshotError(RuntimeError):
    """A snapshot that cannot be used (corrupt, foreign, or of another format)."""


def _identity(gallery: Gallery) -> dict[str, Any]:
    created = getattr(gallery, "created_at", None)
    # the pack too: a gallery migrated to another pack (issue 13) has other embeddings under the same id
    return {"gallery_id": int(gallery.id), "name": gallery.name, "created_at": str(created),
            "dim": int(gallery.embedding_size), "kind": gallery.index_kind,
            "pack": f"{getattr(gallery, 'pack_name', '')} {getattr(gallery, 'pack_version', '')}"}


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            crc = zlib.crc32(block, crc)
    return crc


class SnapshotStore:
    """Saves and loads FAISS gallery indexes under ``root`` (the registry's ``snapshots`` hook)."""

    def __init__(self, root: Path, rebuild_ratio: float = 0.2) -> None:
        self.root = Path(root)
        self.rebuild_ratio = rebuild_ratio

    def folder(self, gallery_id: int) -> Path:
        return self.root / f"gallery-{gallery_id}"

    def save(self, gallery: Gallery, index: Any, position: int) -> None:
        """Persist ``index`` as including every change <= ``position``; the caller blocks its writes."""
        if not isinstance(index, GalleryIndex):
            return  # other backends persist themselves
        started = time.perf_counter()
        index.wait_idle()  # no build can start meanwhile: builds follow writes, which the caller blocks
        state = index.export_state()
        tmp = self.root / f".gallery-{gallery.id}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            size = self._write(gallery, state, position, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone once renamed into place; removed on failure
        log.info("gallery %s: snapshot of %d faces at position %d saved in %.1f s", gallery.name,
                 size, position, time.perf_counter() - started)

    def _write(self, gallery: Gallery, state: dict, position: int, tmp: Path) -> int:
        final = self.folder(gallery.id)
        files = {}
        for name in ("ids", "subjects", "vectors", "tombstones"):
            np.save(tmp / f"{name}.npy", state[name], allow_pickle=False)
            files[f"{name}.npy"] = tmp / f"{name}.npy"
        if state["index"] is not None:
            faiss.write_index(state["index"], str(tmp / "index.faiss"))
            files["index.faiss"] = tmp / "index.faiss"
        meta = {"format": FORMAT, "position": int(position), "size": int(len(state["ids"])),
                "concrete_kind": state["kind"], "trained_at": int(state["trained_at"]),
                "weak": float(state["weak"]) if np.isfinite(state["weak"]) else None,
                **_identity(gallery),
                "files": {name: {"bytes": p.stat().st_size, "crc32": _crc(p)} for name, p in files.items()}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        old = self.root / f".gallery-{gallery.id}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)  # another process saving at the same moment may win: its snapshot is as good
        shutil.rmtree(old, ignore_errors=True)
        return int(meta["size"])

    def load(self, gallery: Gallery, params: IndexParams) -> tuple[GalleryIndex, int] | None:
        """(index, position) from the gallery's snapshot; None when there is none."""
        folder = self.folder(gallery.id)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            return None
        started = time.perf_counter()
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"unreadable meta.json: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise SnapshotError(f"snapshot format {meta.get('format')!r}, expected {FORMAT}")
        for key, value in _identity(gallery).items():
            if meta.get(key) != value:
                raise SnapshotError(f"snapshot of another gallery ({key}: {meta.get(key)!r} != {value!r})")
        for name, expected in meta["files"].items():
            path = folder / name
            intact = path.exists() and path.stat().st_size == expected["bytes"]
            if not intact or _crc(path) != expected["crc32"]:
                raise SnapshotError(f"{name} is missing or corrupt")
        # floats bound for a memory-mapped table are paged in while copied there, not read whole first
        paged = "r" if factory.floats_on_disk(params, int(meta["size"]), int(meta["dim"])) else None
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False,
                                mmap_mode=paged if name == "vectors" else None)
                  for name in ("ids", "subjects", "vectors", "tombstones")}
        if len(arrays["ids"]) != meta["size"] or arrays["vectors"].shape != (meta["size"], meta["dim"]):
            raise SnapshotError("array sizes disagree with meta.json")
        has_index = "index.faiss" in meta["files"]
        faiss_index = faiss.read_index(str(folder / "index.faiss")) if has_index else None
        index = GalleryIndex(gallery.embedding_size, params, self.rebuild_ratio)
        index.import_state({**arrays, "index": faiss_index, "kind": meta["concrete_kind"],
                            "trained_at": meta["trained_at"],
                            "weak": -np.inf if meta.get("weak") is None else meta["weak"]})
        log.info("gallery %s: snapshot of %d faces at position %d loaded in %.1f s", gallery.name,
                 meta["size"], meta["position"], time.perf_counter() - started)
        return index, int(meta["position"])

    def discard(self, gallery_id: int) -> None:
        shutil.rmtree(self.folder(gallery_id), ignore_errors=True)

"""A gallery index in Milvus (pymilvus): Milvus Lite embedded in a file, or a standalone/cluster by URI.

Same interface as ``GalleryIndex``. The store stays the source of truth: the collection is a copy that
follows the change log through the registry, and every load (start-up, reload) reconciles it with the
store — faces missing from Milvus are inserted, faces Milvus holds that the store no longer has are deleted
— without re-inserting what is already there. A small local map face → subject (16 bytes per face) answers
``size``/``contains`` and subject deletions without a round trip.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from app.search.factory import IndexParams, nlist_for
from app.search.gallery_index import Hit
from app.search.vectors import ABSENT, IdMap

log = logging.getLogger("marginface.search")
INSERT_BATCH = 5000
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()

# Milvus index type and search parameters for each MarginFace kind.
MILVUS_INDEX = {"flat": "FLAT", "ivf": "IVF_FLAT", "ivf_sq8": "IVF_SQ8", "ivf_pq": "IVF_PQ", "hnsw": "HNSW",
                "auto": "AUTOINDEX"}


def client_for(uri: str, token: str = "") -> Any:
    """One MilvusClient per URI in this process (Milvus Lite allows one opener of its file)."""
    from pymilvus import MilvusClient

    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            client = _clients[uri] = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
        return client


def collection_name(prefix: str, gallery_id: int) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_g{gallery_id}")


class MilvusGalleryIndex:
    """One gallery's faces in a Milvus collection (face_id primary key, subject_id, vector)."""

    backend = "milvus"

    def __init__(self, dim: int, params: IndexParams, client: Any, collection: str, expected_faces: int = 0):
        self.dim = dim
        self.params = params
        self.client = client
        self.collection = collection
        self._lock = threading.RLock()
        self._subject_of = IdMap()
        self._seen: IdMap | None = None  # ids met during a bulk load (reconciliation)
        self.kind = params.kind
        self._open(expected_faces)

    def _open(self, expected_faces: int) -> None:
        from pymilvus import DataType

        if self.client.has_collection(self.collection):
            fields = self.client.describe_collection(self.collection).get("fields", [])
            dims = [f.get("params", {}).get("dim") for f in fields if f.get("name") == "vector"]
            if dims and int(dims[0]) == self.dim:
                self.client.load_collection(self.collection)  # a restarted server finds it released
                self._load_ids()
                return
            self.client.drop_collection(self.collection)  # another gallery's leftover: rebuilt from the store
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("face_id", DataType.INT64, is_primary=True)
        schema.add_field("subject_id", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index_params = self.client.prepare_index_params()
        kind = MILVUS_INDEX.get(self.params.kind, "AUTOINDEX")
        extra: dict[str, int] = {}
        if kind.startswith("IVF"):
            extra["nlist"] = nlist_for(max(expected_faces, 10_000))
        if kind == "IVF_PQ":
            extra.update(m=max(1, self.dim // 4), nbits=8)
        if kind == "HNSW":
            extra.update(M=self.params.hnsw_m, efConstruction=self.params.hnsw_ef_construction)
        index_params.add_index(field_name="vector", index_type=kind, metric_type="IP", params=extra)
        self.client.create_collection(self.collection, schema=schema, index_params=index_params,
                                      consistency_level="Strong")

    def _load_ids(self) -> None:
        iterator = self.client.query_iterator(self.collection, batch_size=10_000,
                                              output_fields=["face_id", "subject_id"])
        try:
            while batch := iterator.next():
                ids = np.array([row["face_id"] for row in batch], np.int64)
                self._subject_of.set(ids, np.array([row["subject_id"] for row in batch], np.int64))
        finally:
            iterator.close()

    # introspection
    @property
    def size(self) -> int:
        return len(self._subject_of)

    @property
    def subjects(self) -> int:
        with self._lock:
            return int(len(np.unique(self._subject_of.items()[1])))

    def describe(self) -> str:
        return f"Milvus {MILVUS_INDEX.get(self.params.kind, 'AUTOINDEX')}"

    def contains(self, face_id: int) -> bool:
        return self._subject_of.get_one(face_id) != ABSENT

    def face_ids(self) -> set[int]:
        with self._lock:
            return set(self._subject_of.keys().tolist())

    def memory_bytes(self) -> int:
        return self._subject_of.nbytes()

    def rebuilding(self) -> bool:
        return False

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    # writes
    @contextlib.contextmanager
    def bulk(self) -> Iterator[MilvusGalleryIndex]:
        """A load from the store: afterwards, faces the store did not list are deleted (reconciliation)."""
        with self._lock:
            self._seen = IdMap()
        try:
            yield self
            with self._lock:
                keys = self._subject_of.keys()
                extra = keys[self._seen.get(keys) == ABSENT]
                if len(extra):
                    log.info("milvus %s: %d faces not in the store deleted", self.collection, len(extra))
                    self.remove(extra.tolist())
        finally:
            self._seen = None

    def add(self, face_ids: np.ndarray, subject_ids: np.ndarray, vectors: np.ndarray) -> int:
        ids = np.asarray(face_ids, np.int64).reshape(-1)
        subs = np.asarray(subject_ids, np.int64).reshape(-1)
        vecs = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        with self._lock:
            if self._seen is not None:
                self._seen.set(np.unique(ids), np.zeros(len(np.unique(ids)), np.int64))
            _, first = np.unique(ids, return_index=True)
            keep = np.zeros(len(ids), bool)
            keep[first] = True
            keep &= self._subject_of.get(ids) == ABSENT
            if not keep.any():
                return 0
            ids, subs, vecs = ids[keep], subs[keep], vecs[keep]
            for start in range(0, len(ids), INSERT_BATCH):
                stop = start + INSERT_BATCH
                rows = [{"face_id": int(f), "subject_id": int(s), "vector": v}
                        for f, s, v in zip(ids[start:stop].tolist(), subs[start:stop].tolist(),
                                           vecs[start:stop], strict=True)]
                self.client.upsert(self.collection, rows)  # idempotent: processes sharing a server
            self._subject_of.set(ids, subs)
            return int(len(ids))

    def remove(self, face_ids: list[int]) -> int:
        with self._lock:
            ids = np.unique(np.asarray(list(face_ids), np.int64))
            present = ids[self._subject_of.get(ids) != ABSENT] if len(ids) else ids
            if not len(present):
                return 0
            for start in range(0, len(present), INSERT_BATCH):
                self.client.delete(self.collection, ids=present[start : start + INSERT_BATCH].tolist())
            self._subject_of.delete(present)
            return int(len(present))

    def remove_subject(self, subject_id: int) -> int:
        with self._lock:
            return self.remove(self._subject_of.keys_with_value(int(subject_id)).tolist())

    def drop(self) -> None:
        """Delete the collection (the gallery was deleted)."""
        with self._lock:
            self.client.drop_collection(self.collection)
            self._subject_of = IdMap()

    def stored_count(self) -> int:
        """Faces the Milvus collection holds (for reconciliation checks)."""
        found = self.client.query(self.collection, filter="face_id >= 0", output_fields=["count(*)"])
        return int(found[0]["count(*)"])

    # search
    def _search_params(self) -> dict[str, Any]:
        kind = MILVUS_INDEX.get(self.params.kind, "AUTOINDEX")
        if kind.startswith("IVF"):
            return {"metric_type": "IP", "params": {"nprobe": self.params.nprobe}}
        if kind == "HNSW":
            return {"metric_type": "IP", "params": {"ef": self.params.hnsw_ef_search}}
        return {"metric_type": "IP", "params": {}}

    def search(self, queries: np.ndarray, top_k: int) -> list[list[Hit]]:
        """For each query the ``top_k`` best subjects (best stored face each), widening like GalleryIndex."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        total = self.size
        if total == 0:
            return [[] for _ in range(len(queries))]
        depth = min(total, max(4 * top_k, 32), 16_384)
        rows = self._raw(queries, depth)
        results = []
        for q, row in enumerate(rows):
            hits, row_depth = self._collapse(row, top_k), depth
            while len(hits) < top_k and row_depth < min(total, 16_384):
                row_depth = min(total, row_depth * 4, 16_384)  # Milvus caps topk at 16384
                hits = self._collapse(self._raw(queries[q : q + 1], row_depth)[0], top_k)
            results.append(hits)
        return results

    def _raw(self, queries: np.ndarray, depth: int) -> list[list[tuple[float, int, int]]]:
        found = self.client.search(self.collection, data=queries.tolist(), limit=depth,
                                   output_fields=["subject_id"], search_params=self._search_params())
        return [[(float(h["distance"]), int(h["face_id"]), int(h["entity"]["subject_id"])) for h in row]
                for row in found]

    def _collapse(self, row: list[tuple[float, int, int]], top_k: int) -> list[Hit]:
        best: dict[int, Hit] = {}
        for sim, face_id, subject in sorted(row, key=lambda r: -r[0]):
            if subject in best or self._subject_of.get_one(face_id) == ABSENT:
                continue
            best[subject] = Hit(subject, face_id, sim)
            if len(best) == top_k:
                break
        return list(best.values())

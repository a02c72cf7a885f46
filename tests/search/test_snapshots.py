"""Fast start: indexes saved with their change-log position; start-up loads them and replays the tail."""

from __future__ import annotations

import json

import numpy as np

from app.search.factory import IndexParams
from app.search.registry import IndexRegistry
from app.search.snapshots import SnapshotStore
from app.store.repository import NewFace, Repository
from tests.search.conftest import DIM, clustered

N = 2600  # above IVF_MIN_TRAIN: the snapshot holds a trained IVF-SQ8 index


def _registry(repo: Repository, root) -> IndexRegistry:
    registry = IndexRegistry(repo, IndexParams(use_gpu=False))
    registry.snapshots = SnapshotStore(root)
    registry.load_all()
    return registry


def _gallery_with_faces(repo: Repository):
    gallery = repo.create_gallery("big", "default", "1", DIM, "ivf_sq8")
    ids, subjects, vectors = clustered(N + 100, seed=9, per_subject=20)
    made = {}
    for s in np.unique(subjects[:N]).tolist():
        subject = repo.create_subject(gallery.id, f"s{s}")
        faces = [NewFace(v) for v in vectors[subjects == s]]
        made[s] = (subject.id, repo.add_faces(gallery, subject.id, faces))
    return gallery, made, vectors


def _store_face_ids(repo: Repository, gallery_id: int) -> set[int]:
    return {int(i) for ids, _, _ in repo.iter_embeddings(gallery_id) for i in ids}


def test_start_up_loads_the_snapshot_and_replays_only_the_tail(repo, tmp_path, monkeypatch):
    gallery, made, vectors = _gallery_with_faces(repo)
    first = _registry(repo, tmp_path / "idx")
    index = first.get(gallery)
    assert index.kind == "ivf_sq8" and index.builds == 1
    assert first.save_snapshots() == 1

    # after the snapshot: a new subject, a deleted face, a deleted subject
    extra = repo.create_subject(gallery.id, "late")
    late_ids = repo.add_faces(gallery, extra.id, [NewFace(v) for v in vectors[N:]])
    repo.delete_face(gallery.id, made[0][1][0])
    repo.delete_subject(gallery.id, made[1][0])

    fetched: list[int] = []
    real = repo.iter_embeddings

    def counting(gallery_id, *args, **kwargs):
        for batch in real(gallery_id, *args, **kwargs):
            fetched.append(len(batch[0]))
            yield batch

    monkeypatch.setattr(repo, "iter_embeddings", counting)
    second = _registry(repo, tmp_path / "idx")
    monkeypatch.setattr(repo, "iter_embeddings", real)
    restored = second.get(gallery)
    assert restored.builds == 0 and restored.kind == "ivf_sq8"  # loaded, not rebuilt
    assert sum(fetched) == len(late_ids)  # only the tail's new faces were read from the store
    assert restored.face_ids() == _store_face_ids(repo, gallery.id)
    assert restored.search(vectors[N : N + 1], 1)[0][0].face_id == late_ids[0]
    hits = restored.search(vectors[:50], 5)
    assert all(h.subject_id != made[1][0] and h.face_id != made[0][1][0] for row in hits for h in row)


def test_corrupt_foreign_or_stale_snapshots_are_rebuilt_from_the_store(repo, tmp_path):
    gallery, _, _ = _gallery_with_faces(repo)
    root = tmp_path / "idx"
    first = _registry(repo, root)
    first.get(gallery)
    first.save_snapshots()
    folder = SnapshotStore(root).folder(gallery.id)
    expected = _store_face_ids(repo, gallery.id)

    vectors_file = folder / "vectors.npy"
    data = bytearray(vectors_file.read_bytes())
    data[-7] ^= 0xFF  # one flipped bit pattern in the float vectors
    vectors_file.write_bytes(bytes(data))
    rebuilt = _registry(repo, root).get(gallery)
    assert rebuilt.builds == 1 and rebuilt.face_ids() == expected

    first.save_snapshots()
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "position": repo.last_change_id() + 10}))
    stale = _registry(repo, root).get(gallery)  # a snapshot from ahead of this store (e.g. a restored backup)
    assert stale.builds == 1 and stale.face_ids() == expected

    first.save_snapshots()
    (folder / "index.faiss").write_bytes(b"")  # truncated
    assert _registry(repo, root).get(gallery).builds == 1

    first.save_snapshots()
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "name": "another"}))
    assert _registry(repo, root).get(gallery).builds == 1

    first.save_snapshots()
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "pack": "default 2"}))  # migrated to another pack
    assert _registry(repo, root).get(gallery).builds == 1

    first.save_snapshots()
    assert _registry(repo, root).get(gallery).builds == 0  # and an intact one is used

"""Slow, needs ../shared: enroll 200 CelebA identities (first 3 images each) and identify all their other
images through the API; prints rank-1 accuracy (the largest face of each query image)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.server.conftest import jpeg_file

IDENTITIES = 200
ENROLL_PER_IDENTITY = 3


@pytest.mark.slow
def test_celeba_rank1(shared_dir, make_client, tmp_path):
    root = shared_dir / "data" / "celeba-subset"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    people = sorted(p for p in root.iterdir() if p.is_dir())[:IDENTITIES]
    client = make_client(f"sqlite:///{tmp_path / 'celeba.db'}", max_concurrent_requests=64)
    assert client.post("/galleries", json={"name": "celeba"}).status_code == 201

    queries: list[tuple[str, bytes]] = []
    rejected = 0
    for person in people:
        images = sorted(person.glob("*.jpg"))
        files = [("image", jpeg_file(p.read_bytes(), p.name)) for p in images[:ENROLL_PER_IDENTITY]]
        r = client.post("/galleries/celeba/enroll", data={"subject": person.name}, files=files)
        assert r.status_code in (201, 422), r.text
        body = r.json()
        results = body["results"] if "results" in body else body["error"]["results"]
        rejected += sum(1 for x in results if "error" in x)
        queries += [(person.name, p.read_bytes()) for p in images[ENROLL_PER_IDENTITY:]]

    def rank1(item: tuple[str, bytes]) -> tuple[bool, bool]:
        name, data = item
        r = client.post(
            "/identify", data={"gallery": "celeba", "top_k": "1"}, files={"image": jpeg_file(data)}
        )
        assert r.status_code == 200, r.text
        faces = r.json()["faces"]
        if not faces:
            return False, False
        largest = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
        top = largest["candidates"][0]["name"] if largest["candidates"] else None
        return True, top == name

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(rank1, queries))
    found = sum(f for f, _ in outcomes)
    correct = sum(c for _, c in outcomes)
    stats = client.get("/galleries/celeba").json()
    print(
        f"\nCelebA subset: {stats['subjects']} identities, {stats['faces']} faces enrolled "
        f"({rejected} enrollment images rejected); {len(queries)} queries, {found} with a face; "
        f"rank-1 accuracy {correct / len(queries):.4f} "
        f"(over queries with a face: {correct / max(found, 1):.4f})"
    )
    assert correct / len(queries) > 0.5

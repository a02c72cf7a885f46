"""Server test fixtures: stores (SQLite file and a fresh PostgreSQL database), apps, clients, face photos."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A freshly created PostgreSQL database (dropped afterwards); skips when PostgreSQL is unreachable."""
    if not _pg_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    import psycopg

    name = f"mf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store under test: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'marginface.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def make_settings(default_pack: Path, tmp_path: Path) -> Callable[..., Settings]:
    def build(database_url: str | None = None, **overrides) -> Settings:
        values = {"home": tmp_path, "auth": False, "database_url": database_url, "sync_interval_s": 0.2}
        return Settings(**(values | overrides))

    return build


@pytest.fixture
def make_client(make_settings) -> Iterator[Callable[..., TestClient]]:
    """Start apps (entered TestClients) on demand; all are shut down at the end of the test."""
    clients: list[TestClient] = []

    def start(database_url: str | None = None, **overrides) -> TestClient:
        client = TestClient(create_app(make_settings(database_url, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client, store_url: str) -> TestClient:
    """An app without auth on the parametrised store."""
    return make_client(store_url)


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


@pytest.fixture(scope="session")
def t1_bgr(t1_image_path: Path) -> np.ndarray:
    image = cv2.imread(str(t1_image_path))
    assert image is not None
    return image


@pytest.fixture(scope="session")
def t1_faces(t1_bgr: np.ndarray, default_pack: Path) -> list[dict]:
    """The six faces of t1.jpg, left to right: box and a crop with margin (its own JPEG)."""
    from models.pipeline import FacePipeline

    faces = sorted(FacePipeline.from_pack("default").detect(t1_bgr), key=lambda f: f.box[0])
    assert len(faces) == 6
    out = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        mx, my = 0.4 * (x2 - x1), 0.4 * (y2 - y1)
        top, left = max(0, int(y1 - my)), max(0, int(x1 - mx))
        crop = t1_bgr[top : int(y2 + my), left : int(x2 + mx)]
        out.append({"box": face.box.copy(), "crop": encode_jpeg(crop)})
    return out


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_bgr: np.ndarray) -> bytes:
    return encode_jpeg(astronaut_bgr)


def jpeg_file(data: bytes, name: str = "photo.jpg") -> tuple[str, bytes, str]:
    return (name, data, "image/jpeg")


def enroll_t1(client: TestClient, t1_faces: list[dict], gallery: str = "t1", headers=None) -> dict[str, int]:
    """Create ``gallery`` and enroll each t1 face crop as subject person0..person5; name → subject id."""
    r = client.post("/galleries", json={"name": gallery}, headers=headers)
    assert r.status_code == 201, r.text
    ids = {}
    for i, face in enumerate(t1_faces):
        r = client.post(
            f"/galleries/{gallery}/enroll",
            data={"subject": f"person{i}"},
            files={"image": jpeg_file(face["crop"], f"person{i}.jpg")},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["enrolled"] == 1 and body["results"][0]["face_id"] > 0
        ids[f"person{i}"] = body["subject"]["id"]
    return ids

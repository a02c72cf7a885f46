"""The honest contract: declared bodies, 4xx for client mistakes (deep JSON, out-of-range ids, unknown
packs), a 500 that keeps the connection, and nothing for free without a key."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.console.live import make_keys
from tests.server.servers import free_port

ERROR_REF = "#/components/schemas/ErrorBody"
CORE = ("/detect", "/verify", "/identify", "/galleries", "/galleries/{gallery}")


@pytest.fixture
def bare_client(tmp_path: Path):
    """An app without model packs (enough for routes that fail before any model runs)."""
    with TestClient(create_app(Settings(home=tmp_path, auth=False), load_packs=False)) as client:
        yield client


def test_openapi_declares_the_error_body_for_every_error_status(bare_client: TestClient) -> None:
    spec = bare_client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
                checked += 1
            if path not in ("/healthz", "/readyz"):
                assert {"401", "500", "503"} <= set(operation["responses"]), (method, path)
    assert checked > 100


def test_openapi_declares_typed_success_bodies(bare_client: TestClient) -> None:
    spec = bare_client.get("/openapi.json").json()
    for path in CORE:
        for method, operation in spec["paths"][path].items():
            success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
            schema = success["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path, schema)  # a named model, not "any object"
    identified = spec["components"]["schemas"]["Identified"]
    assert {"faces", "threshold", "gallery"} <= set(identified["required"])


def test_deeply_nested_json_is_a_400_not_a_500(bare_client: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/detect", "/galleries", "/galleries/g/subjects"):
        r = bare_client.post(path, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("invalid_json", "http_400")


def test_out_of_range_numbers_are_4xx(bare_client: TestClient) -> None:
    for path in ("/galleries/g/faces/18446744073709551616", "/keys/18446744073709551616"):
        r = bare_client.delete(path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert "error" in r.json()
    r = bare_client.get("/galleries/g/subjects", params={"after": 2**64})
    assert 400 <= r.status_code < 500, r.text


def test_an_unknown_pack_at_gallery_creation_is_a_client_error(make_client, tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 'p.db'}")
    r = client.post("/galleries", json={"name": "g", "pack": "no-such-pack"})
    assert 400 <= r.status_code < 500, r.text
    assert client.get("/galleries/g").status_code == 404  # nothing half-created


def _raw_exchange(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
    length = lengths[0]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_500_keeps_the_keep_alive_connection(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, auth=False), load_packs=False)

    def boom() -> None:
        raise RuntimeError("a fault no request can provoke")

    app.add_api_route("/boom", boom)  # the only way to get an unhandled exception on demand
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            first = _raw_exchange(sock, "/boom")
            assert first.startswith(b"HTTP/1.1 500") and b'"internal_error"' in first
            second = _raw_exchange(sock, "/healthz")  # same connection
            assert second.startswith(b"HTTP/1.1 200"), second
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_nothing_for_free_without_a_key(make_client, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    tokens = make_keys(url)
    client = make_client(url, auth=True)
    plain = {"Authorization": f"Bearer {tokens['plain']}"}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert client.post("/galleries", json={"name": "secret-gallery-name"}, headers=admin).status_code == 201

    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    assert client.get("/readyz", headers={"Authorization": "Bearer mf_wrong"}).json() == {"status": "ready"}
    detailed = client.get("/readyz", headers=plain).json()
    assert detailed["packs"][0]["name"] == "default" and detailed["problems"] == []

    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    text = client.get("/metrics", headers=plain).text
    assert "marginface_galleries 1.0" in text and "secret-gallery-name" not in text


def test_metrics_can_be_opened_and_named_explicitly(make_client, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    make_keys(url)
    client = make_client(url, auth=True, public_metrics=True, metrics_gallery_names=True)
    client.app.state.ctx.galleries.create("named")
    text = client.get("/metrics").text
    assert 'marginface_gallery_faces{gallery="named"} 0.0' in text


def test_out_of_range_ids_on_each_store(client: TestClient) -> None:
    """≥ 2**63 on SQLite, subject ids ≥ 2**31 on PostgreSQL (INTEGER): a 4xx, and the store still works."""
    assert client.post("/galleries", json={"name": "g"}).status_code == 201
    for value in (2**31, 2**63, 2**64):
        for method, path in (
            ("GET", f"/galleries/g/subjects/{value}"),
            ("PATCH", f"/galleries/g/subjects/{value}"),
            ("DELETE", f"/galleries/g/subjects/{value}"),
            ("GET", f"/galleries/g/subjects/{value}/faces"),
            ("DELETE", f"/galleries/g/faces/{value}"),
            ("GET", f"/galleries/g/subjects?after={value}"),
        ):
            r = client.request(method, path, json={"name": "x"} if method == "PATCH" else None)
            assert 400 <= r.status_code < 500 or (r.status_code == 200 and method == "GET"), (path, r.text)
            assert r.status_code == 200 or "error" in r.json()
    assert client.post("/galleries/g/subjects", json={"name": "still-works"}).status_code == 201

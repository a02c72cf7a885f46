"""API keys: created, listed and revoked with the CLI; missing, wrong, revoked and non-admin keys refused."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from app.services.context import NoKeysError
from cli.main import main as marginface
from tests.server.conftest import jpeg_file


def _create_key(capsys, *args: str) -> str:
    assert marginface(["keys", "create", *args]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mf_") and len(token) > 40
    return token


def test_keys(make_client, tmp_path, monkeypatch, capsys, t1_faces):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    monkeypatch.setenv("MARGINFACE_DATABASE_URL", url)
    with pytest.raises(NoKeysError):
        make_client(url, auth=True)  # refuses to start without keys

    admin = _create_key(capsys, "--admin", "--name", "ops")
    plain = _create_key(capsys, "--name", "kiosk")
    assert marginface(["keys", "create", "--admin", "--if-none"]) == 0
    assert capsys.readouterr().out == ""  # keys exist: nothing created
    client = make_client(url, auth=True)
    as_admin = {"Authorization": f"Bearer {admin}"}
    as_plain = {"X-API-Key": plain}

    assert client.get("/healthz").status_code == 200
    r = client.get("/galleries")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/galleries", headers={"Authorization": "Bearer mf_wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = client.post(
        "/detect", headers={"Authorization": "Basic abc"}, files={"image": jpeg_file(t1_faces[0]["crop"])}
    )
    assert r.status_code == 401

    assert client.post("/galleries", json={"name": "g"}, headers=as_admin).status_code == 201
    r = client.post("/galleries", json={"name": "h"}, headers=as_plain)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    r = client.post(
        "/galleries/g/enroll",
        data={"subject": "a"},
        files={"image": jpeg_file(t1_faces[0]["crop"])},
        headers=as_plain,
    )
    assert r.status_code == 403
    assert client.delete("/galleries/g", headers=as_plain).status_code == 403
    assert client.get("/galleries", headers=as_plain).status_code == 200
    r = client.post("/detect", headers=as_plain, files={"image": jpeg_file(t1_faces[0]["crop"])})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1

    # only hashes are stored
    with create_engine(url).connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    assert admin not in stored and plain not in stored and admin[:10] in stored

    assert marginface(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "kiosk" in listing and plain not in listing
    assert marginface(["keys", "revoke", "kiosk"]) == 0
    assert marginface(["keys", "revoke", "kiosk"]) == 1  # nothing left to revoke
    r = client.get("/galleries", headers=as_plain)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/galleries", headers=as_admin).status_code == 200

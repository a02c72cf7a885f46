"""The admin ``/keys`` API: admin only, the token shown once, revoke refuses the key at once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.console.live import make_keys


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keyed(make_client, tmp_path) -> tuple[TestClient, str, str]:
    """An app with auth on (SQLite file), an admin token and a plain token."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    tokens = make_keys(url)  # the server refuses to start with auth on and no key
    return make_client(url, auth=True), tokens["admin"], tokens["plain"]


def test_keys_need_an_admin_key(keyed) -> None:
    client, admin, plain = keyed
    assert client.get("/keys").status_code == 401
    assert client.get("/keys", headers=bearer("mf_nope")).json()["error"]["code"] == "invalid_api_key"
    for method, path, body in [
        ("GET", "/keys", None),
        ("POST", "/keys", {"name": "x"}),
        ("DELETE", "/keys/1", None),
    ]:
        r = client.request(method, path, json=body, headers=bearer(plain))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "admin_required"
    me = client.get("/keys/me", headers=bearer(plain)).json()
    assert me == {"auth": True, "admin": False, "name": "console-plain", "prefix": plain[:10]}
    assert client.get("/keys/me", headers=bearer(admin)).json()["admin"] is True


def test_token_is_shown_once_and_works(keyed) -> None:
    client, admin, _ = keyed
    r = client.post("/keys", json={"name": "script", "admin": False}, headers=bearer(admin))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    token, key = r.json()["token"], r.json()["key"]
    assert token.startswith("mf_") and key["prefix"] == token[:10] and key["active"] and not key["admin"]
    assert client.get("/keys/me", headers=bearer(token)).json()["name"] == "script"
    listing = client.get("/keys", headers=bearer(admin))
    assert listing.status_code == 200
    assert token not in listing.text  # never again, in any form
    assert [k["name"] for k in listing.json()["keys"]] == ["console-admin", "console-plain", "script"]
    assert all(set(k) == set(key) for k in listing.json()["keys"])
    bad = client.post("/keys", json={"name": "", "admin": "maybe"}, headers=bearer(admin))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_revoke_refuses_the_key_at_once(keyed) -> None:
    client, admin, plain = keyed
    listing = client.get("/keys", headers=bearer(admin)).json()["keys"]
    reader = next(k for k in listing if k["name"] == "console-plain")
    assert client.get("/galleries", headers=bearer(plain)).status_code == 200
    r = client.delete(f"/keys/{reader['id']}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["revoked"] == reader["id"]
    assert r.json()["key"]["active"] is False and r.json()["key"]["revoked_at"]
    refused = client.get("/galleries", headers=bearer(plain))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    again = client.delete(f"/keys/{reader['id']}", headers=bearer(admin))
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_already_revoked"
    missing = client.delete("/keys/9999", headers=bearer(admin))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "key_not_found"


def test_the_last_admin_key_stays(keyed) -> None:
    client, admin, _ = keyed
    root = next(
        k for k in client.get("/keys", headers=bearer(admin)).json()["keys"] if k["name"] == "console-admin"
    )
    r = client.delete(f"/keys/{root['id']}", headers=bearer(admin))
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin_key"
    assert client.get("/keys", headers=bearer(admin)).status_code == 200
    second = client.post("/keys", json={"name": "root2", "admin": True}, headers=bearer(admin)).json()[
        "token"
    ]
    assert client.delete(f"/keys/{root['id']}", headers=bearer(second)).status_code == 200
    assert client.get("/keys", headers=bearer(admin)).status_code == 401
    assert client.get("/keys", headers=bearer(second)).status_code == 200


def test_console_is_served_with_a_strict_csp(keyed) -> None:
    client, _, _ = keyed
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert '<script type="module" src="/console/js/main.js">' in page.text
    script = client.get("/console/js/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/console/../app/settings.py").status_code == 404
    assert client.get("/console/%2e%2e/%2e%2e/main.py").status_code == 404


def test_whoami_without_auth(make_client, tmp_path) -> None:
    """On a --no-auth server the console signs in by itself: /keys/me says auth is off."""
    client = make_client(f"sqlite:///{tmp_path / 'open.db'}", auth=False)
    assert client.get("/keys/me").json() == {"auth": False, "admin": True, "name": None, "prefix": None}

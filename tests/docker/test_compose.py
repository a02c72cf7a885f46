"""docker/compose.yaml and its nginx configuration, checked structurally (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_has_postgres_two_replicas_and_a_proxy_all_with_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "server-1", "server-2", "proxy"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("server-1", "server-2"):
        server = services[name]
        assert server["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / server["build"]["context"] / server["build"]["dockerfile"]).is_file()
        assert server["environment"]["MARGINFACE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in server["environment"]["MARGINFACE_DATABASE_URL"]
        assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert any(v.endswith(":/data") for v in server["volumes"])
    assert services["server-1"]["volumes"] != services["server-2"]["volumes"]
    proxy = services["proxy"]
    assert {d["condition"] for d in proxy["depends_on"].values()} == {"service_healthy"}
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_proxy_config_balances_over_exactly_the_server_replicas() -> None:
    compose = _compose()
    proxy = compose["services"]["proxy"]
    mount = next(v for v in proxy["volumes"] if "nginx.conf" in v)
    source, target, mode = mount.split(":")
    assert target == "/etc/nginx/nginx.conf" and mode == "ro"
    config = (DOCKER / source).read_text()
    upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", config, re.S)
    assert upstream
    servers = re.findall(r"server\s+([\w\-]+):(\d+)", upstream.group(2))
    replicas = sorted(n for n in compose["services"] if n.startswith("server-"))
    assert sorted(name for name, _ in servers) == replicas
    assert {port for _, port in servers} == {"8000"}
    assert f"proxy_pass http://{upstream.group(1)};" in config
    assert config.count("{") == config.count("}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error} (error when unset/empty)."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name, "")
        if op == ":?" and not value:
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        if op == ":-" and not value:
            return arg
        return value

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", one, text)


def test_compose_refuses_to_start_without_a_postgres_password() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    assert "change-me" not in text
    uses = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", text)
    assert len(uses) == 2 and all(u.startswith("${POSTGRES_PASSWORD:?") for u in uses)
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        _interpolate(text, {})
    services = yaml.safe_load(_interpolate(text, {"POSTGRES_PASSWORD": "s3cret"}))["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert ":s3cret@postgres:5432/" in services["server-1"]["environment"]["MARGINFACE_DATABASE_URL"]

"""docker-compose.yml, loaded by the Compose specification's reference library (compose-go,
as `docker compose config` does): it cannot start without JWT_SECRET, and development
tokens are off unless asked for."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
TOOL = ROOT / "tools" / "compose-config"


@pytest.fixture(scope="module")
def compose_config() -> Path:
    binary = ROOT / ".local" / "bin" / "compose-config"
    sources = [p for p in TOOL.iterdir() if p.is_file()]
    if not binary.exists() or any(p.stat().st_mtime > binary.stat().st_mtime for p in sources):
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=TOOL, check=True, timeout=600)
    return binary


def required_variables() -> set[str]:
    """Every ${NAME:?message} of the file: what an operator must set."""
    return set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))


def load(binary: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in required_variables() | {"DEV_TOKENS"}}
    return subprocess.run([str(binary), str(COMPOSE)], env={**env, **variables}, capture_output=True,
                          text=True, timeout=60)


def all_required() -> dict[str, str]:
    return {name: secrets.token_urlsafe(32) for name in required_variables()}


def test_jwt_secret_is_required(compose_config):
    assert "JWT_SECRET" in required_variables()
    without = {k: v for k, v in all_required().items() if k != "JWT_SECRET"}
    for variables in (without, {**without, "JWT_SECRET": ""}):
        result = load(compose_config, **variables)
        assert result.returncode == 1, result.stdout
        assert "JWT_SECRET" in result.stderr and "at least 32 bytes" in result.stderr


def test_with_the_secrets_set_the_services_start_without_development_tokens(compose_config):
    variables = all_required()
    result = load(compose_config, **variables)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    ours = {name: s["environment"] for name, s in services.items() if "JWT_SECRET" in (s.get("environment") or {})}
    assert set(ours) == {"applications", "assessment", "grants", "notifications"}
    for name, environment in ours.items():
        assert environment["JWT_SECRET"] == variables["JWT_SECRET"], name
        assert environment["DEV_TOKENS"] == "false", name


SERVICES = ("applications", "assessment", "grants", "notifications")
USERS_SCRIPT = ROOT / "deploy" / "mongodb" / "create-service-users.js"


def test_each_service_has_its_own_database_user_and_no_other_service_its_credentials(compose_config):
    """MongoDB with authentication; each service connects as its own user, with its own password,
    which no other service is given; the init script limits each user to its own database."""
    variables = all_required()
    assert {f"MONGODB_PASSWORD_{s.upper()}" for s in (*SERVICES, "root")} <= required_variables()
    result = load(compose_config, **variables)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    database = services["mongodb"]
    assert database["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == variables["MONGODB_PASSWORD_ROOT"]
    assert any(v["source"].endswith("deploy/mongodb/create-service-users.js")
               and v["target"].startswith("/docker-entrypoint-initdb.d/") for v in database["volumes"])
    users = {}
    for name in SERVICES:
        url = services[name]["environment"]["MONGODB_URL"]
        user, password = re.match(r"^mongodb://([^:@/]+):([^@/]+)@mongodb:27017/\?authSource=admin$", url).groups()
        assert (user, password) == (name, variables[f"MONGODB_PASSWORD_{name.upper()}"]), name
        others = {k: v for k, v in variables.items()
                  if k.startswith("MONGODB_PASSWORD_") and k != f"MONGODB_PASSWORD_{name.upper()}"}
        assert not [k for k, v in others.items() if v in json.dumps(services[name])], name
        users[name] = user
    assert len(set(users.values())) == len(SERVICES)
    script = USERS_SCRIPT.read_text()
    assert re.search(r'roles: \[\{ role: "readWrite", db: own \}, \{ role: "readWrite", db: rebuilt \}, '
                     r'\{ role: "dbAdmin", db: rebuilt \}\]', script)
    assert 'const own = `cx_${service}`, rebuilt = `cx_${service}_rebuilt`;' in script
    assert "password.length < 24" in script


def test_a_database_password_missing_stops_compose(compose_config):
    for name in (*SERVICES, "root"):
        variable = f"MONGODB_PASSWORD_{name.upper()}"
        result = load(compose_config, **{k: v for k, v in all_required().items() if k != variable})
        assert result.returncode == 1 and variable in result.stderr, variable


def test_the_mail_ui_listens_on_this_machine_only(compose_config):
    result = load(compose_config, **all_required())
    (port,) = json.loads(result.stdout)["services"]["smtp"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8025", 8025)

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

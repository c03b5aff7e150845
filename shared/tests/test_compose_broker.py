"""docker-compose.yml runs the broker as deploy/infra.sh does: SASL/SCRAM, ACLs, one principal
per service, every password required. No Docker engine here: these read the files."""

from __future__ import annotations

import re
from pathlib import Path

from cx_shared.topics import PRINCIPALS, SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (ROOT / "docker-compose.yml").read_text()
# compose-broker.sh writes its configuration with broker-properties.sh (shared with infra.sh)
BROKER = "".join((ROOT / "deploy" / "kafka" / name).read_text()
                 for name in ("compose-broker.sh", "broker-properties.sh"))


def service_block(name: str) -> str:
    match = re.search(rf"^  {name}:\n((?:    .*\n|\n)*)", COMPOSE, re.MULTILINE)
    assert match, f"no service {name} in docker-compose.yml"
    return match.group(1)


def test_each_service_connects_as_its_own_principal_with_a_required_password():
    for service in SERVICES:
        block = service_block(service)
        assert f"KAFKA_USERNAME: {service}\n" in block
        assert f"KAFKA_PASSWORD: ${{KAFKA_PASSWORD_{service.upper()}:?" in block
    assert "KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT" in COMPOSE and "PLAINTEXT://" not in COMPOSE


def test_the_broker_gets_every_principals_password_from_a_required_variable():
    kafka = service_block("kafka")
    for principal in PRINCIPALS:
        assert f"KAFKA_PASSWORD_{principal.upper()}: ${{KAFKA_PASSWORD_{principal.upper()}:?" in kafka
    listed = re.search(r"^PRINCIPALS=\((.*)\)$", BROKER, re.MULTILINE).group(1).split()
    assert listed == list(PRINCIPALS)
    assert re.search(r"KAFKA_PASSWORD: \$\{KAFKA_PASSWORD_ADMIN:\?", service_block("kafka-setup"))


def test_the_broker_authenticates_every_listener_and_authorizes_by_acl():
    listeners = re.search(r"^listeners=(.*)$", BROKER, re.MULTILINE).group(1)
    protocols = dict(item.split(":") for item in
                     re.search(r"^listener.security.protocol.map=(.*)$", BROKER, re.MULTILINE).group(1).split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert "CONTROLLER://127.0.0.1:" in listeners  # the controller only on the container's loopback
    for line in ("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                 "super.users=User:admin", "allow.everyone.if.no.acl.found=false"):
        assert f"\n{line}\n" in BROKER

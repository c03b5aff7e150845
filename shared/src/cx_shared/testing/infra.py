"""Where the tests find Kafka, the database and the SMTP sink.

With KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL set (``make test`` sets them from the local
infrastructure, with KAFKA_SECURITY_PROTOCOL and one KAFKA_PASSWORD_<PRINCIPAL> per broker
principal), those are used. Otherwise, when a Docker engine is reachable, Kafka and MongoDB
are started with testcontainers (a broker without authentication, on loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field

from pydantic import SecretStr

from cx_shared.settings import KafkaSettings
from cx_shared.topics import ADMIN

PASSWORD_PREFIX = "KAFKA_PASSWORD_"  # KAFKA_PASSWORD_GRANTS: the grants principal's password


@dataclass(frozen=True)
class Infra:
    kafka: KafkaSettings  # as the admin: the tests watch and forge with it
    mongodb_url: str
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_sink_url: str | None = None
    passwords: dict[str, SecretStr] = field(default_factory=dict, repr=False)  # principal -> password

    def kafka_as(self, principal: str) -> KafkaSettings:
        """The broker settings of one principal (a broker without authentication: the same)."""
        if self.kafka.kafka_security_protocol == "PLAINTEXT":
            return self.kafka
        if principal not in self.passwords:
            raise KeyError(f"no broker password for {principal}: deploy/infra.sh env prints "
                           f"{PASSWORD_PREFIX}<PRINCIPAL> for every principal")
        return self.kafka.model_copy(update={"kafka_username": principal, "kafka_password": self.passwords[principal]})

    def kafka_env(self, principal: str) -> dict[str, str]:
        """The environment a process of this principal is given (its own credentials only)."""
        kafka = self.kafka_as(principal)
        return {"KAFKA_BOOTSTRAP_SERVERS": kafka.kafka_bootstrap_servers,
                "KAFKA_SECURITY_PROTOCOL": kafka.kafka_security_protocol,
                "KAFKA_SASL_MECHANISM": kafka.kafka_sasl_mechanism, "KAFKA_USERNAME": kafka.kafka_username,
                "KAFKA_PASSWORD": kafka.kafka_password.get_secret_value()}


def passwords_from(environ: dict[str, str]) -> dict[str, SecretStr]:
    return {k[len(PASSWORD_PREFIX):].lower(): SecretStr(v) for k, v in environ.items()
            if k.startswith(PASSWORD_PREFIX) and v}


def docker_reachable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def infra_from_variables() -> Infra | None:
    """The infrastructure the environment names (deploy/infra.sh env), or None."""
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if not (kafka and mongo):
        return None
    port = os.environ.get("SMTP_PORT")
    passwords = passwords_from(dict(os.environ))
    admin = KafkaSettings(kafka_username=ADMIN, kafka_password=passwords.get(ADMIN, SecretStr("")))
    return Infra(admin, mongo, os.environ.get("SMTP_HOST"), int(port) if port else None,
                 os.environ.get("SMTP_SINK_URL"), passwords)


def infra_from_environment(stack: ExitStack) -> Infra | None:
    if found := infra_from_variables():
        return found
    if not docker_reachable():
        return None
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka_c = stack.enter_context(KafkaContainer().with_kraft())
    mongo_c = stack.enter_context(MongoDbContainer("mongo:8"))
    plaintext = KafkaSettings(kafka_bootstrap_servers=kafka_c.get_bootstrap_server(),
                              kafka_security_protocol="PLAINTEXT")
    return Infra(plaintext, mongo_c.get_connection_url())

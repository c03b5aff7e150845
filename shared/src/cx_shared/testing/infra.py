"""Where the tests find Kafka, the database and the SMTP sink.

With KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL set (``make test`` sets them from the local
infrastructure), those are used. Otherwise, when a Docker engine is reachable, Kafka and
MongoDB are started with testcontainers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongodb_url: str
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_sink_url: str | None = None


def docker_reachable() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def infra_from_environment(stack: ExitStack) -> Infra | None:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        port = os.environ.get("SMTP_PORT")
        return Infra(kafka, mongo, os.environ.get("SMTP_HOST"), int(port) if port else None,
                     os.environ.get("SMTP_SINK_URL"))
    if not docker_reachable():
        return None
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka_c = stack.enter_context(KafkaContainer().with_kraft())
    mongo_c = stack.enter_context(MongoDbContainer("mongo:8"))
    return Infra(kafka_c.get_bootstrap_server(), mongo_c.get_connection_url())

"""pytest plugin (loaded from the root pyproject): real infrastructure for every test."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from cx_shared.auth import issue_token
from cx_shared.kafka import delete_topics, ensure_topics
from cx_shared.settings import ServiceSettings
from cx_shared.testing.infra import Infra, infra_from_environment
from cx_shared.testing.services import ServiceProcess

LOG_DIR = Path(__file__).resolve().parents[4] / ".local" / "test-logs"


@pytest.fixture(scope="session")
def infra():
    with ExitStack() as stack:
        found = infra_from_environment(stack)
        if found is None:
            pytest.fail("no Kafka/MongoDB: run through `make test` (starts the local infrastructure), "
                        "set KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL, or make a Docker engine reachable")
        yield found


@pytest.fixture
def namespace() -> str:
    """A namespace of this test's own (a suffix of its topics and groups), so tests sharing
    the broker never see each other."""
    return f"t{uuid.uuid4().hex[:10]}"


def create_topics(infra: Infra, namespace: str) -> None:
    """The namespace's topics, created by the admin as a deployment does (a service's principal
    may not create topics)."""
    _on_own_loop(ensure_topics(infra.kafka, namespace, partitions=3, replication=1))


def _on_own_loop(work) -> None:
    """Run on a thread of its own: a fixture may be set up or torn down while pytest's event
    loop is in use."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, work).result()


async def _forget(infra: Infra, namespace: str, databases: set[str]) -> None:
    """A test's topics and databases go when it ends: a suite of hundreds of tests would otherwise
    leave the broker thousands of idle partitions and the database thousands of schemas."""
    await delete_topics(infra.kafka, namespace)
    client = AsyncMongoClient(infra.mongodb_url)
    try:
        for name in databases:
            await client.drop_database(name)
    finally:
        await client.close()


@pytest_asyncio.fixture
async def mongo_db(infra: Infra):
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
def service_env(infra: Infra, namespace: str):
    """Environment for a service process of this test: own topics, own databases, and the
    service's own broker principal (never the admin's)."""
    create_topics(infra, namespace)
    databases: set[str] = set()

    def env(service: str, **extra: str) -> dict[str, str]:
        base = {"SERVICE_NAME": service, **infra.kafka_env(service), "MONGODB_URL": infra.mongodb_url,
                "MONGODB_DATABASE": f"{namespace.replace('.', '')}_{service}", "TOPIC_NAMESPACE": namespace,
                "LOG_JSON": "true", "DEV_TOKENS": "true"}
        if infra.smtp_port:
            base.update(SMTP_HOST=infra.smtp_host or "127.0.0.1", SMTP_PORT=str(infra.smtp_port))
        found = {**base, **extra}
        databases.add(found["MONGODB_DATABASE"])
        return found
    yield env
    _on_own_loop(_forget(infra, namespace, databases))


@pytest.fixture
def run_service(service_env):
    """Start services as real processes; all are stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(service: str, **extra: str) -> ServiceProcess:
        proc = ServiceProcess(service, service_env(service, **extra), LOG_DIR).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def token():
    """Bearer tokens signed with the local development secret."""
    settings = ServiceSettings()

    def make(*roles: str, subject: str = "tester", organisation_id: str | None = None,
             partnership_ids: tuple[str, ...] = (), programme: bool = False,
             partnership_roles: dict[str, list[str]] | None = None) -> dict[str, str]:
        jwt = issue_token(settings.jwt_secret, settings.jwt_issuer, subject, roles,
                          organisation_id=organisation_id, partnership_ids=partnership_ids, programme=programme,
                          partnership_roles=partnership_roles)
        return {"Authorization": f"Bearer {jwt}"}
    return make

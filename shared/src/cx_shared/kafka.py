"""The one Kafka producer every service uses, topic creation and the check of their retention, and
the one place that turns settings into a client's connection and credentials (every Kafka client goes through
client_options: services, rebuild, tests, benchmarks, deploy scripts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from cx_shared import tracing
from cx_shared.envelope import Envelope
from cx_shared.logging import get_logger
from cx_shared.metrics import PUBLISHED
from cx_shared.settings import KafkaSettings
from cx_shared.topics import (
    ALL_TOPICS,
    DEAD_LETTER_RETENTION_MS,
    UNLIMITED,
    Topic,
    qualified,
    retention_differences,
    retention_setting,
    topic_configs,
)

log = get_logger(__name__)

TOPIC_ALREADY_EXISTS, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC = 36, 29, 3


async def stop_reading(task: asyncio.Task | None, consumer: Any | None) -> None:
    """Stops a reader written as a task over its own consumer: the task first, so that nothing
    reads from a consumer being closed."""
    if task:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if consumer:
        await consumer.stop()


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka's keyword arguments for the broker and the principal these settings name.
    Refuses settings that would connect without credentials to a broker off loopback."""
    if refusals := kafka.kafka_refusals():
        raise ValueError("; ".join(refusals))
    options: dict[str, Any] = {"bootstrap_servers": kafka.kafka_bootstrap_servers,
                               "security_protocol": kafka.kafka_security_protocol}
    if kafka.kafka_security_protocol != "PLAINTEXT":
        options.update(sasl_mechanism=kafka.kafka_sasl_mechanism, sasl_plain_username=kafka.kafka_username,
                       sasl_plain_password=kafka.kafka_password.get_secret_value())
    if kafka.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = create_ssl_context(cafile=kafka.kafka_ssl_cafile or None)
    return options


_FASTSTREAM_SECURITY = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def broker_security(kafka: KafkaSettings) -> BaseSecurity | None:
    """The same options in FastStream's form (it also shows them in the AsyncAPI document)."""
    options = client_options(kafka)
    if kafka.kafka_security_protocol == "PLAINTEXT":
        return None
    return _FASTSTREAM_SECURITY[kafka.kafka_sasl_mechanism](
        username=options["sasl_plain_username"], password=options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"), use_ssl=kafka.kafka_security_protocol == "SASL_SSL")


@asynccontextmanager
async def admin_client(kafka: KafkaSettings, **extra: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(kafka), **extra)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


class Publisher:
    """Idempotent producer with acks=all: a retried send is never written twice."""

    def __init__(self, kafka: KafkaSettings, namespace: str = "", client_id: str = "cx"):
        self.kafka, self.namespace, self.client_id = kafka, namespace, client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds the running event loop on construction.
        self._producer = AIOKafkaProducer(**client_options(self.kafka), client_id=self.client_id,
                                          enable_idempotence=True, acks="all", linger_ms=5)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, envelope: Envelope) -> None:
        await self.publish_all([envelope])

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        """Append every event in order (one key's events keep their order on its partition),
        then wait once for the broker to acknowledge them all."""
        acks = [await self._send(e) for e in envelopes]
        if acks:
            await asyncio.gather(*acks)
            for e in envelopes:
                PUBLISHED.labels(e.type).inc()

    async def _send(self, e: Envelope) -> asyncio.Future:
        with tracing.within(e.traceparent, e.tracestate):  # the producer's span in the event's trace
            return await self._producer.send(qualified(e.topic, self.namespace), value=e.kafka_value(),
                                             key=e.subject.encode(), headers=e.kafka_headers())

    async def send_raw(self, topic: str, value: bytes | None, key: bytes | None,
                       headers: list[tuple[str, bytes]]) -> None:
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)


async def ensure_topics(kafka: KafkaSettings, namespace: str, partitions: int, replication: int,
                        topics: Sequence[Topic] = ALL_TOPICS, retention_ms: int = UNLIMITED,
                        dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS) -> None:
    """Create the topics that do not exist yet (idempotent, safe to race), with an explicit retention
    (never the broker's default of a week). A service's principal sees and needs only its own
    topics; it may not create any, so in a secured deployment the admin creates them first
    (deploy/infra.sh up, compose's kafka-setup, the Helm chart's setup job, the test fixtures)."""
    async with admin_client(kafka) as admin:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(qualified(t, namespace), num_partitions=partitions, replication_factor=replication,
                       topic_configs=topic_configs(t, retention_ms, dead_letter_retention_ms))
                  for t in topics if qualified(t, namespace) not in existing]
        if not wanted:
            return
        response = await admin.create_topics(wanted)
    refused = [name for name, code, *_ in response.topic_errors if code not in (0, TOPIC_ALREADY_EXISTS)]
    if refused:
        raise RuntimeError(f"topics {', '.join(refused)} are missing and {kafka.kafka_username or 'this client'} "
                           f"may not create them: create them with the admin principal (deploy/infra.sh up does)")


async def delete_topics(kafka: KafkaSettings, namespace: str) -> None:
    """Every topic of the namespace that exists, deleted (a test's or a benchmark's namespace
    when it is done, so repeated runs do not leave the broker thousands of idle partitions)."""
    async with admin_client(kafka) as admin:
        existing = set(await admin.list_topics())
        if names := [qualified(t, namespace) for t in ALL_TOPICS if qualified(t, namespace) in existing]:
            await admin.delete_topics(names)


async def retention_findings(kafka: KafkaSettings, names: Sequence[str], retention_ms: int,
                             dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS) -> dict[str, dict[str, str]]:
    """Each topic whose retention differs from what it was meant to have, with what the broker has
    (config -> value), or {"error": ...} when the broker would not tell (this principal lacks
    DESCRIBE_CONFIGS on it). Topics as wanted are left out."""
    async with admin_client(kafka) as admin:
        asked = {k: v for name in names for k, v in topic_configs(name, retention_ms, dead_letter_retention_ms).items()}
        described = await _describe(admin, names, asked)
    findings = {}
    for code, message, _kind, name, entries in described:
        found = {"error": f"{code} {message or ''}".strip()} if code else retention_differences(
            topic_configs(name, retention_ms, dead_letter_retention_ms), {entry[0]: entry[1] for entry in entries})
        if found:
            findings[name] = found
    return findings


async def warn_about_retention(kafka: KafkaSettings, names: Sequence[str], retention_ms: int,
                               dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS) -> dict[str, dict]:
    """Say at start-up when a topic would delete events a replay needs, or keep dead letters longer
    than configured. Only says: the topics are the admin's, and a service runs the same whatever
    their retention."""
    try:
        findings = await retention_findings(kafka, names, retention_ms, dead_letter_retention_ms)
    except Exception as exc:  # a check, not a condition of starting
        log.warning("topic retention not checked", topics=list(names), error=str(exc))
        return {}
    for topic, found in findings.items():
        if "error" in found:
            log.warning("topic retention not checked: the broker refused to describe the topic's configuration "
                        "(grant DESCRIBE_CONFIGS on it)", topic=topic, error=found["error"])
            continue
        wanted, setting = topic_configs(topic, retention_ms, dead_letter_retention_ms), retention_setting(topic)
        log.warning(f"topic keeps records otherwise than {setting} says", topic=topic, found=found,
                    setting=setting, wanted={name: wanted[name] for name in found},
                    fix=f"kafka-configs.sh --alter --entity-type topics --entity-name {topic} --add-config "
                        + ",".join(f"{name}={wanted[name]}" for name in found))
    return findings


async def _describe(admin: AIOKafkaAdminClient, names: Sequence[str], configs: dict[str, str]) -> list[tuple]:
    """The configs of the topics: (error code, message, kind, name, entries) each. A topic created a
    moment ago may be unknown yet to the broker that answers: asked again for up to five seconds."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(configs)) for name in names]
    for _ in range(20):
        described = [r for response in await admin.describe_configs(resources) for r in response.resources]
        if all(code != UNKNOWN_TOPIC for code, *_ in described):
            break
        await asyncio.sleep(0.25)
    return described

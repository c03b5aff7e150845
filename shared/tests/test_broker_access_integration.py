"""The broker lets each principal do what the ACL table grants and nothing else: no client
without credentials gets in, a service writes only its own topic (and the dead letters),
reads only what it consumes, in its own consumer group. Checked against the real broker
of deploy/infra.sh, for every principal and every topic."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError
from pydantic import SecretStr

from cx_shared.broker_access import bindings, broker_bindings, grants
from cx_shared.kafka import client_options
from cx_shared.settings import KafkaSettings
from cx_shared.testing.fixtures import create_topics
from cx_shared.testing.kafka import end_offsets, publish_raw
from cx_shared.topics import ALL_TOPICS, FINANCE_SYSTEM, SERVICES, SUBSCRIBER, Topic, consumer_group, qualified

pytestmark = pytest.mark.infra
PRINCIPALS = (*SERVICES, FINANCE_SYSTEM, SUBSCRIBER)


@pytest.fixture
def secured(infra):
    if infra.kafka.kafka_security_protocol == "PLAINTEXT":
        pytest.skip("this broker has no authentication (testcontainers); deploy/infra.sh's has")
    return infra


@pytest.fixture
def quiet_kafka_logs() -> Iterator[None]:
    """aiokafka logs every retry of a refused request; the refusals are what these tests expect."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def granted(principal: str, operation: str, topic: Topic) -> bool:
    return any(g.principal == principal and g.operation == operation and g.resource == "topic" and g.name == topic.name
               for g in grants())


async def try_write(kafka: KafkaSettings, topic: str) -> str:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"probe")
        return "written"
    except TopicAuthorizationFailedError:
        return "refused"
    finally:
        await producer.stop()


async def try_read(kafka: KafkaSettings, topic: str, group: str) -> str:
    consumer = AIOKafkaConsumer(topic, **client_options(kafka), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    try:
        await consumer.start()
        for _ in range(30):  # the admin's seed record is there: an allowed reader gets it
            if any((await consumer.getmany(timeout_ms=1000)).values()):
                return "read"
        return "nothing"
    except TopicAuthorizationFailedError:
        return "refused"
    except GroupAuthorizationFailedError:
        return "group refused"
    finally:
        await consumer.stop()


async def test_the_brokers_acls_are_exactly_the_table(secured):
    assert await broker_bindings(secured.kafka) == bindings(grants())


async def test_a_client_without_valid_credentials_is_refused_and_writes_nothing(secured, namespace, quiet_kafka_logs):
    create_topics(secured, namespace)
    topic = qualified(ALL_TOPICS[0], namespace)
    anonymous = KafkaSettings(kafka_bootstrap_servers=secured.kafka.kafka_bootstrap_servers,
                              kafka_security_protocol="PLAINTEXT")
    wrong_password = secured.kafka_as("applications").model_copy(update={"kafka_password": SecretStr("guessed")})
    controller = anonymous.model_copy(update={"kafka_bootstrap_servers": os.environ["KAFKA_CONTROLLER_SERVERS"]})
    for stranger in (anonymous, wrong_password, controller):
        with pytest.raises(KafkaConnectionError):
            await publish_raw(stranger, topic, b"{}", key=b"forged")
    end = await end_offsets(secured.kafka, topic)
    assert sum(end.values()) == 0


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_a_principal_writes_and_reads_only_what_the_table_grants(secured, namespace, principal,
                                                                       quiet_kafka_logs):
    create_topics(secured, namespace)
    for topic in ALL_TOPICS:  # a record on each topic, so that a permitted read has something to get
        await publish_raw(secured.kafka, qualified(topic, namespace), b"{}", key=b"seed")
    kafka = secured.kafka_as(principal)
    group = consumer_group(principal, namespace)

    writes = await asyncio.gather(*(try_write(kafka, qualified(t, namespace)) for t in ALL_TOPICS))
    reads = await asyncio.gather(*(try_read(kafka, qualified(t, namespace), group) for t in ALL_TOPICS))

    assert dict(zip([t.name for t in ALL_TOPICS], writes)) == {
        t.name: "written" if granted(principal, "WRITE", t) else "refused" for t in ALL_TOPICS}
    assert dict(zip([t.name for t in ALL_TOPICS], reads)) == {
        t.name: "read" if granted(principal, "READ", t) else "refused" for t in ALL_TOPICS}
    written = {t.name: sum((await end_offsets(secured.kafka, qualified(t, namespace))).values()) for t in ALL_TOPICS}
    assert written == {t.name: 1 + granted(principal, "WRITE", t) for t in ALL_TOPICS}  # the refused left no record


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_cannot_consume_in_another_services_group(secured, namespace, service, quiet_kafka_logs):
    create_topics(secured, namespace)
    other = SERVICES[(SERVICES.index(service) + 1) % len(SERVICES)]
    topic = qualified(ALL_TOPICS[0], namespace)  # cx.applications.v1: every service reads it
    assert await try_read(secured.kafka_as(service), topic, consumer_group(other, namespace)) == "group refused"

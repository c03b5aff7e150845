"""Topics keep their events without time limit unless configured otherwise (TOPIC_RETENTION_MS),
and a service that finds a topic that would delete events says so at start-up. Over the real
broker of deploy/infra.sh, as the admin and as each service's own principal."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import NewTopic

from cx_shared.broker_access import grants
from cx_shared.kafka import admin_client, ensure_topics, retention_findings
from cx_shared.testing.fixtures import create_topics
from cx_shared.topics import (
    ALL_TOPICS,
    DEAD_LETTER_RETENTION_MS,
    DEAD_LETTERS,
    EVENT_TOPICS,
    KEYS,
    PRODUCT_TOPICS,
    SERVICES,
    SUBSCRIBER,
    qualified,
)

pytestmark = pytest.mark.infra
THREE_DAYS_MS = 3 * 24 * 3600 * 1000
A_WEEK_MS = 7 * 24 * 3600 * 1000  # Kafka's own default (log.retention.hours=168)
WARNING = "topic keeps records otherwise than"


def names(namespace: str, topics=ALL_TOPICS) -> list[str]:
    return [qualified(t, namespace) for t in topics]


def described_by(service: str) -> list:
    """The topics a service's principal may describe: those it reads or writes."""
    return [t for t in ALL_TOPICS
            if any(g.principal == service and g.operation == "DESCRIBE_CONFIGS" and g.name == t.name for g in grants())]


async def test_topics_are_created_keeping_events_without_time_limit(infra, namespace):
    create_topics(infra, namespace)
    assert await retention_findings(infra.kafka, names(namespace), -1) == {}
    # The broker's week would show here: the check compares with what the broker really holds. The keys
    # topic is compacted whatever TOPIC_RETENTION_MS says (see topics.KEYS_CONFIGS).
    found = await retention_findings(infra.kafka, names(namespace), A_WEEK_MS, A_WEEK_MS)
    assert set(found) == set(names(namespace, EVENT_TOPICS))


async def test_a_configured_retention_is_the_one_topics_are_created_with(infra, namespace):
    await ensure_topics(infra.kafka, namespace, partitions=1, replication=1, retention_ms=THREE_DAYS_MS)
    assert await retention_findings(infra.kafka, names(namespace), THREE_DAYS_MS) == {}
    assert await retention_findings(infra.kafka, names(namespace), -1) == {
        name: {"retention.ms": str(THREE_DAYS_MS)} for name in names(namespace, PRODUCT_TOPICS)}
    # Dead letters keep their own retention (DEAD_LETTER_RETENTION_MS, 30 days by default), not the events'.
    dead_letters = qualified(DEAD_LETTERS, namespace)
    assert await retention_findings(infra.kafka, [dead_letters], THREE_DAYS_MS, dead_letter_retention_ms=-1) == {
        dead_letters: {"retention.ms": str(DEAD_LETTER_RETENTION_MS)}}


async def test_dead_letters_are_created_with_their_configured_retention(infra, namespace):
    await ensure_topics(infra.kafka, namespace, partitions=1, replication=1, dead_letter_retention_ms=THREE_DAYS_MS)
    assert await retention_findings(infra.kafka, names(namespace), -1, dead_letter_retention_ms=THREE_DAYS_MS) == {}
    assert await retention_findings(infra.kafka, names(namespace), -1) == {
        qualified(DEAD_LETTERS, namespace): {"retention.ms": str(THREE_DAYS_MS)}}


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_may_check_the_topics_it_uses_and_no_other(infra, namespace, service):
    create_topics(infra, namespace)
    own = described_by(service)
    assert DEAD_LETTERS in own
    assert await retention_findings(infra.kafka_as(service), names(namespace, own), -1) == {}
    others = [t for t in ALL_TOPICS if t not in own]
    refused = await retention_findings(infra.kafka_as(service), names(namespace, others), -1)
    assert set(refused) == set(names(namespace, others))
    assert all(found["error"].startswith("29") for found in refused.values())  # TOPIC_AUTHORIZATION_FAILED


async def test_a_principal_without_describe_configs_is_told_so(infra, namespace):
    create_topics(infra, namespace)
    found = await retention_findings(infra.kafka_as(SUBSCRIBER), names(namespace, [DEAD_LETTERS]), -1)
    assert list(found) == [qualified(DEAD_LETTERS, namespace)]
    assert list(found.values())[0]["error"].startswith("29")  # TOPIC_AUTHORIZATION_FAILED, not a finding


async def test_a_service_says_at_start_up_which_topics_would_delete_events(infra, namespace, run_service):
    # Topics made as before explicit retention: the broker's default week.
    legacy = f"t{uuid.uuid4().hex[:10]}"
    async with admin_client(infra.kafka) as admin:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names(legacy)])

    warned = run_service("assessment", TOPIC_NAMESPACE=legacy)
    found = [r for r in warned.log_records() if r.get("event", "").startswith(WARNING)]
    assert {w["topic"] for w in found} == set(names(legacy, described_by("assessment")))
    # the keys topic is to be compacted, not kept by time: its warning says so
    keys = [w for w in found if w["topic"] == qualified(KEYS, legacy)]
    assert len(keys) == 1 and keys[0]["found"]["cleanup.policy"] == "delete"
    warnings = [w for w in found if w not in keys]
    assert all(w["found"] == {"retention.ms": str(A_WEEK_MS)} for w in warnings)
    wanted = {w["topic"]: str(DEAD_LETTER_RETENTION_MS) if w["topic"] == qualified(DEAD_LETTERS, legacy) else "-1"
              for w in warnings}
    assert all(w["fix"].endswith(f"--entity-name {w['topic']} --add-config retention.ms={wanted[w['topic']]}")
               for w in warnings)
    assert {w["setting"] for w in warnings} == {"TOPIC_RETENTION_MS", "DEAD_LETTER_RETENTION_MS"}

    quiet = run_service("assessment")  # the fixture's topics, made as a deployment makes them
    assert [r for r in quiet.log_records() if "retention" in r.get("event", "")] == []
    assert any(r.get("event") == "service started" for r in quiet.log_records())

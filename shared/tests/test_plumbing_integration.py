"""The shared plumbing over the real broker and database: outbox relay, idempotent
consumption, dead letters for malformed and poison messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter

from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationWithdrawn
from cx_shared.events.assessment import ApplicationRejected
from cx_shared.service import Service
from cx_shared.settings import ServiceSettings
from cx_shared.store import change, new_document, not_processed
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, publish_raw, topic_names
from cx_shared.topics import APPLICATIONS, ASSESSMENT, DEAD_LETTERS, qualified, service_source

pytestmark = pytest.mark.infra
APPLICATIONS_SOURCE, ASSESSMENT_SOURCE = service_source("applications"), service_source("assessment")


class TallyStorage:
    def __init__(self, db):
        self.tallies = db["tallies"]


async def on_withdrawn(event: ApplicationWithdrawn, delivery: Delivery, storage: TallyStorage) -> None:
    if event.reason == "poison":
        raise RuntimeError("this handler can never process it")
    rejected = delivery.emit(ApplicationRejected(application_id=event.application_id, call_id=event.call_id,
                                                 reasons=["withdrawn"]))
    await storage.tallies.update_one({"_id": event.application_id}, {"$setOnInsert": {"count": 0}}, upsert=True)
    await storage.tallies.update_one(not_processed({"_id": event.application_id}, delivery.event_id),
                                     change({"$inc": {"count": 1}}, events=[rejected], processed=delivery.event_id))


async def on_rejected(event: ApplicationRejected, delivery: Delivery, storage: TallyStorage) -> None:
    """Subscribes the kit to a second topic, where a forged event can be written."""


@pytest.fixture
async def kit_service(infra, namespace):
    # Plays assessment (its events carry assessment's source), with the admin's broker rights.
    settings = ServiceSettings(**infra.kafka.model_dump(), service_name="assessment",
                               mongodb_database=f"kit_{uuid.uuid4().hex[:6]}",
                               mongodb_url=infra.mongodb_url, topic_namespace=namespace,
                               consumer_max_attempts=2, consumer_backoff_seconds=0.05, log_json=False,
                               jwt_secret=uuid.uuid4().hex * 2)
    service = Service(settings, title="kit", description="test",
                      handlers={ApplicationWithdrawn: on_withdrawn, ApplicationRejected: on_rejected},
                      storage=TallyStorage, outbox_collections=["tallies"], routers=[APIRouter()])
    service.http = service.app()
    async with service.http.router.lifespan_context(service.http):
        yield service
        await service.mongo.drop_database(settings.mongodb_database)


def dead_letters(watch: TopicWatcher, namespace: str) -> list:
    return [r for r in watch.records if r.topic == qualified(DEAD_LETTERS, namespace)]


def withdrawn(app_id: str, reason: str = "") -> Envelope:
    return Envelope.wrap(ApplicationWithdrawn(application_id=app_id, call_id="c1", reason=reason),
                         source=APPLICATIONS_SOURCE, subject=app_id)


async def test_outbox_events_are_published_and_removed(kit_service, infra, namespace):
    env = Envelope.wrap(ApplicationRejected(application_id="a1", call_id="c1", reasons=["r"]), source=ASSESSMENT_SOURCE,
                        subject="a1")
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watch:
        await kit_service.storage.tallies.insert_one(new_document({"_id": "a1", "count": 0}, events=[env]))
        await watch.wait_for(lambda: watch.of_type(ApplicationRejected, "a1"), what="relayed event")
        assert [e.id for e in watch.of_type(ApplicationRejected)] == [env.id]
        record = watch.records[0]
        assert record.key == b"a1"
    doc = await kit_service.storage.tallies.find_one({"_id": "a1"})
    assert doc["outbox"] == []


async def test_redelivered_event_changes_nothing_and_emits_nothing_twice(kit_service, infra, namespace):
    env = withdrawn("a2")
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watch:
        await publish_envelope(infra.kafka, env, namespace)
        await publish_envelope(infra.kafka, env, namespace)
        await publish_envelope(infra.kafka, withdrawn("a2"), namespace)  # a different event: counts
        await watch.wait_for(lambda: len(watch.of_type(ApplicationRejected, "a2")) >= 2, what="two rejections")
        doc = await kit_service.storage.tallies.find_one({"_id": "a2"})
        assert doc["count"] == 2
        assert len(watch.of_type(ApplicationRejected, "a2")) == 2
        caused = {e.causationid for e in watch.of_type(ApplicationRejected, "a2")}
        assert env.id in caused


async def test_malformed_message_goes_to_dead_letters_and_next_is_processed(kit_service, infra, namespace):
    topic = qualified(APPLICATIONS, namespace)
    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, ASSESSMENT)) as watch:
        await publish_raw(infra.kafka, topic, b"{not json", key=b"a3",
                          headers=[("ce_id", b"x"), ("ce_source", APPLICATIONS_SOURCE.encode()), ("ce_type", b"t"),
                                   ("ce_specversion", b"1.0")])
        bad_contract = withdrawn("a3")
        await publish_raw(infra.kafka, topic, b'{"application_id": "a3"}', key=b"a3",
                          headers=bad_contract.kafka_headers())
        await publish_envelope(infra.kafka, withdrawn("a3"), namespace)
        await watch.wait_for(lambda: watch.of_type(ApplicationRejected, "a3"), what="next good message")
        dead = dead_letters(watch, namespace)
        assert len(dead) == 2
        errors = [dict(r.headers)["dlq_error"].decode() for r in dead]
        assert "value is not JSON" in errors[0]
        assert "call_id: Field required" in errors[1]
        assert dict(dead[0].headers)["dlq_original_topic"] == topic.encode()


async def test_event_on_a_topic_its_contract_does_not_name_is_dead_lettered_as_forged(kit_service, infra, namespace):
    """Whoever can write one topic must not be able to pass for another topic's producer."""
    forged, genuine = withdrawn("a5"), withdrawn("a5")
    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, ASSESSMENT)) as watch:
        await publish_raw(infra.kafka, qualified(ASSESSMENT, namespace), forged.kafka_value(), key=b"a5",
                          headers=forged.kafka_headers())
        await publish_envelope(infra.kafka, genuine, namespace)
        await watch.wait_for(lambda: watch.of_type(ApplicationRejected, "a5"), what="the genuine event's effect")
        await watch.wait_for(lambda: dead_letters(watch, namespace),
                             what="the forged event's dead letter")
        dead = dead_letters(watch, namespace)
        assert [dict(r.headers)["dlq_reason"] for r in dead] == [b"forged"]
        assert dict(dead[0].headers)["ce_id"] == forged.id.encode()
    doc = await kit_service.storage.tallies.find_one({"_id": "a5"})
    assert doc["count"] == 1 and doc["processed"] == [genuine.id]


async def test_event_from_a_source_its_topic_does_not_allow_is_dead_lettered_as_forged_and_changes_nothing(
        kit_service, infra, namespace):
    """The admin (or a broker without ACLs) can write any topic: the consumer still believes an
    event only from its contract's producer, here grants passing for applications."""
    forged = Envelope.wrap(ApplicationWithdrawn(application_id="a6", call_id="c1"), source=service_source("grants"),
                           subject="a6")
    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, ASSESSMENT)) as watch:
        await publish_envelope(infra.kafka, forged, namespace)  # on the right topic, cx.applications.v1.<ns>
        await watch.wait_for(lambda: dead_letters(watch, namespace), what="the forged event's dead letter")
        headers = dict(dead_letters(watch, namespace)[0].headers)
        assert headers["dlq_reason"] == b"forged" and headers["ce_id"] == forged.id.encode()
        assert b"/clusterxchange/grants" in headers["dlq_error"]
        assert await kit_service.storage.tallies.find_one({"_id": "a6"}) is None
        genuine = withdrawn("a6")  # the same exchange's next event is handled: the forged one held nothing up
        await publish_envelope(infra.kafka, genuine, namespace)
        await watch.wait_for(lambda: watch.of_type(ApplicationRejected, "a6"), what="the genuine event's effect")
        assert [e.causationid for e in watch.of_type(ApplicationRejected, "a6")] == [genuine.id]
    doc = await kit_service.storage.tallies.find_one({"_id": "a6"})
    assert doc["count"] == 1 and doc["processed"] == [genuine.id]


async def test_poison_message_is_dead_lettered_after_retries(kit_service, infra, namespace):
    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, ASSESSMENT)) as watch:
        await publish_envelope(infra.kafka, withdrawn("a4", reason="poison"), namespace)
        await publish_envelope(infra.kafka, withdrawn("a4"), namespace)
        await watch.wait_for(lambda: watch.of_type(ApplicationRejected, "a4"), what="message after the poison")
        dead = dead_letters(watch, namespace)
        assert len(dead) == 1
        headers = dict(dead[0].headers)
        assert headers["dlq_reason"] == b"poison"
        assert b"this handler can never process it" in headers["dlq_error"]


async def test_health_asyncapi_and_problem_details(kit_service, namespace):
    transport = httpx.ASGITransport(app=kit_service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        assert (await client.get("/health/live")).json() == {"status": "alive"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["problems"] == []
        spec = (await client.get("/asyncapi.json")).json()  # the whole system's catalog, in this namespace
        assert spec["asyncapi"] == "3.0.0"
        assert spec["channels"]["cx.applications.v1"]["address"] == qualified(APPLICATIONS, namespace)
        assert ApplicationWithdrawn.ce_type() in str(spec["components"]["messages"])
        page = await client.get("/asyncapi")
        assert page.headers["content-type"].startswith("text/html") and ApplicationWithdrawn.ce_type() in page.text
        missing = await client.post("/dev/tokens", json={"subject": "x", "roles": ["visitor"]})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert "DEV_TOKENS" in missing.json()["detail"]
        invalid = await client.post("/dev/tokens", json={"subject": "", "roles": ["pilot"]})
        assert invalid.status_code == 422
        fields = {e["field"] for e in invalid.json()["errors"]}
        assert {"subject", "roles.0"} <= fields


async def test_two_relays_over_one_outbox_publish_each_event_once(infra, namespace, mongo_db):
    """Replicas of a service share its database: their relays must not all publish the same events."""
    from cx_shared.kafka import Publisher, ensure_topics
    from cx_shared.outbox import OutboxRelay

    await ensure_topics(infra.kafka, namespace, partitions=3, replication=1)
    envelopes = [Envelope.wrap(ApplicationRejected(application_id=f"r{i}", call_id="c", reasons=["r"]),
                               source=ASSESSMENT_SOURCE, subject=f"r{i}") for i in range(30)]
    await mongo_db.tallies.insert_many([new_document({"_id": f"r{i}"}, events=[e]) for i, e in enumerate(envelopes)])
    publishers = [Publisher(infra.kafka, namespace), Publisher(infra.kafka, namespace)]
    for p in publishers:
        await p.start()
    relays = [OutboxRelay(mongo_db, ["tallies"], p) for p in publishers]
    try:
        async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watch:
            import asyncio
            sent = await asyncio.gather(*(r.relay_once() for r in relays))
            assert sum(sent) == 30
            await watch.wait_for(lambda: len(watch.of_type(ApplicationRejected)) >= 30, what="30 events")
            ids = [e.id for e in watch.of_type(ApplicationRejected)]
            assert sorted(ids) == sorted(e.id for e in envelopes)
        assert await mongo_db.tallies.count_documents({"outbox.0": {"$exists": True}}) == 0
        # every lease let go by its holder
        assert await mongo_db.tallies.count_documents({"relay_lease_until": {"$gt": datetime.now(UTC)}}) == 0
    finally:
        for p in publishers:
            await p.stop()


async def test_an_event_the_broker_refuses_is_parked_and_holds_nothing_up(infra, namespace, mongo_db):
    """A document whose event is over the broker's size limit used to fail every pass of the
    relay, and so starve every document behind it; now it is parked with its reason."""
    from cx_shared.kafka import Publisher, ensure_topics
    from cx_shared.outbox import OutboxRelay

    await ensure_topics(infra.kafka, namespace, partitions=1, replication=1)
    # Contracts and to_outbox() now refuse such an event before it is stored; an outbox written
    # before those bounds (or refused by the broker for another lasting reason) still holds one.
    huge = Envelope.wrap(ApplicationRejected.model_construct(application_id="big", call_id="c",
                                                             reasons=["x" * 1_200_000]), source=ASSESSMENT_SOURCE, subject="big")
    fine = [Envelope.wrap(ApplicationRejected(application_id=f"f{i}", call_id="c", reasons=["r"]),
                          source=ASSESSMENT_SOURCE, subject=f"f{i}") for i in range(3)]
    big_document = new_document({"_id": "big"}, events=[fine[0]])
    big_document["outbox"] = [huge.model_dump(mode="json")]
    await mongo_db.tallies.insert_one(big_document)
    await mongo_db.tallies.insert_many([new_document({"_id": e.subject}, events=[e]) for e in fine])
    publisher = Publisher(infra.kafka, namespace)
    await publisher.start()
    try:
        async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watch:
            assert await OutboxRelay(mongo_db, ["tallies"], publisher).relay_once() == 3
            await watch.wait_for(lambda: len(watch.of_type(ApplicationRejected)) >= 3, what="the three others")
            assert sorted(e.id for e in watch.of_type(ApplicationRejected)) == sorted(e.id for e in fine)
        big = await mongo_db.tallies.find_one({"_id": "big"})
        assert big["outbox"] == [] and "outbox_pending" not in big
        assert [p["event"]["id"] for p in big["outbox_parked"]] == [huge.id]
        assert "TooLarge" in big["outbox_parked"][0]["reason"]
        assert await mongo_db.tallies.count_documents({"outbox_pending": True}) == 0
    finally:
        await publisher.stop()

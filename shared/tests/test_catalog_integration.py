"""The catalog against the real broker and database.

What the plumbing writes on the topics (an event relayed from an outbox, a dead letter) is what
the catalog says: its headers and value pass the catalog's schemas. And a migration to a new
event version: a synthetic GrantCommitted v2 (the amount renamed, a currency added) beside v1.
A consumer migrated first handles both versions (v1 converted to v2 by one function) while the
producer moves from v1 to v2; a consumer not yet migrated goes on with v1 and leaves v2 alone
(an unknown type is skipped, never dead-lettered).
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter
from pydantic import Field

from cx_shared import catalog
from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events import Event
from cx_shared.events.grants import GrantCommitted
from cx_shared.events.notifications import EmailSent
from cx_shared.evolution import upcasting
from cx_shared.service import Service
from cx_shared.settings import ServiceSettings
from cx_shared.store import new_document
from cx_shared.testing.catalog import off_catalog
from cx_shared.testing.contracts import synthetic_contract
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, publish_raw, topic_names, wait_consumed
from cx_shared.testing.waiting import eventually
from cx_shared.topics import DEAD_LETTERS, GRANTS, NOTIFICATIONS, consumer_group, qualified, service_source

pytestmark = pytest.mark.infra
GRANTS_SOURCE = service_source("grants")


def grant_committed_v2() -> type[Event]:
    class GrantCommittedV2(Event, name="grant.committed", version=2, topic=GRANTS):
        """The lump sum committed, as `amount_cents` in its `currency` (v1: `total_cents`, euros)."""

        application_id: str
        call_id: str
        amount_cents: int = Field(ge=0)
        currency: str = Field(min_length=3, max_length=3)
        rule_set_version: str
    return GrantCommittedV2


class Ledger:
    def __init__(self, db):
        self.amounts = db["amounts"]


async def record(event, delivery: Delivery, ledger: Ledger) -> None:
    seen = {"sent_as": delivery.envelope.type, "amount_cents": event.amount_cents, "currency": event.currency}
    await ledger.amounts.update_one({"_id": delivery.event_id}, {"$set": seen}, upsert=True)


async def record_v1(event: GrantCommitted, delivery: Delivery, ledger: Ledger) -> None:
    await ledger.amounts.update_one({"_id": delivery.event_id}, {"$set": {
        "sent_as": delivery.envelope.type, "amount_cents": event.total_cents}}, upsert=True)


@asynccontextmanager
async def consumer(infra, namespace: str, name: str, handlers: dict):
    """A service assembled as every service is, consuming with the handler table given."""
    settings = ServiceSettings(**infra.kafka.model_dump(), service_name=name, mongodb_url=infra.mongodb_url,
                               mongodb_database=f"migration_{uuid.uuid4().hex[:6]}", topic_namespace=namespace,
                               log_json=False, jwt_secret=uuid.uuid4().hex * 2)
    service = Service(settings, title=name, description="test", handlers=handlers, storage=Ledger,
                      outbox_collections=["amounts"], routers=[APIRouter()])
    app = service.app()
    async with app.router.lifespan_context(app):
        yield service
        await service.mongo.drop_database(settings.mongodb_database)


def v1(application_id: str, total: int) -> Envelope:
    event = GrantCommitted(application_id=application_id, call_id="c1", travel_cents=total, subsistence_cents=0,
                           total_cents=total, rule_set_version="default-v1", available_after_cents=0)
    return Envelope.wrap(event, source=GRANTS_SOURCE, subject=application_id)


async def amounts(service: Service) -> dict[str, dict]:
    return {d["_id"]: d async for d in service.storage.amounts.find({}, {"outbox": 0, "outbox_pending": 0})}


async def handled(service: Service, count: int) -> dict[str, dict] | None:
    found = await amounts(service)
    return found if len(found) >= count else None


async def test_during_a_migration_consumers_accept_both_versions(infra, namespace):
    with synthetic_contract(grant_committed_v2) as GrantCommittedV2:
        def to_v2(old: GrantCommitted):
            return GrantCommittedV2(application_id=old.application_id, call_id=old.call_id,
                                    amount_cents=old.total_cents, currency="EUR",
                                    rule_set_version=old.rule_set_version)

        migrated = {GrantCommitted: upcasting(to_v2, record), GrantCommittedV2: record}
        async with (consumer(infra, namespace, "notifications", migrated) as new,
                    consumer(infra, namespace, "applications", {GrantCommitted: record_v1}) as old,
                    TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS)) as dead):
            before = v1("a1", 125_500)  # the producer still sends v1...
            after = Envelope.wrap(GrantCommittedV2(application_id="a1", call_id="c1", amount_cents=99_000,
                                                   currency="EUR", rule_set_version="default-v2"),
                                  source=GRANTS_SOURCE, subject="a1")  # ...then v2, on the same key
            for envelope in (before, after):
                await publish_envelope(infra.kafka, envelope, namespace)

            got = await eventually(lambda: handled(new, 2), what="both versions handled")
            assert got[before.id] == {"_id": before.id, "sent_as": GrantCommitted.ce_type(),
                                      "amount_cents": 125_500, "currency": "EUR"}
            assert got[after.id] == {"_id": after.id, "sent_as": GrantCommittedV2.ce_type(),
                                     "amount_cents": 99_000, "currency": "EUR"}
            await wait_consumed(infra.kafka, [consumer_group("applications", namespace)],
                                [qualified(GRANTS, namespace)])
            assert list(await amounts(old)) == [before.id]  # v2 skipped by the consumer not yet migrated
            assert dead.records == []


async def test_what_the_plumbing_writes_on_the_topics_is_what_the_catalog_says(infra, namespace):
    document = catalog.served(namespace)
    mail = EmailSent(notification_id="n1", application_id="a1", cause_event_id="e1", recipient_role="visitor",
                     cause_event_type=GrantCommitted.ce_type(), language="en", template="grant_committed")
    async with (consumer(infra, namespace, "notifications", {GrantCommitted: record_v1}) as service,
                TopicWatcher(infra.kafka, topic_names(namespace, NOTIFICATIONS, DEAD_LETTERS)) as watch):
        sent = Envelope.wrap(mail, source=service.settings.source, subject="a1", causation_id="e1")
        await service.storage.amounts.insert_one(new_document({"_id": "n1"}, events=[sent]))  # relayed from there
        await publish_raw(infra.kafka, qualified(GRANTS, namespace), b"{not json", key=b"a2",
                          headers=v1("a2", 1).kafka_headers())
        await watch.wait_for(lambda: watch.of_type(EmailSent) and len(watch.records) == 2, what="event and dead letter")

    assert off_catalog(watch.records, namespace) == []
    (event,) = [r for r in watch.records if r.topic == qualified(NOTIFICATIONS, namespace)]
    assert event.topic == document["channels"][NOTIFICATIONS.name]["address"]
    headers = dict(event.headers)
    assert event.key == headers["ce_subject"] == b"a1" and headers["ce_correlationid"] == sent.correlationid.encode()
    (dead,) = [r for r in watch.records if r.topic == qualified(DEAD_LETTERS, namespace)]
    assert dict(dead.headers)["dlq_reason"] == b"malformed" and dead.value == b"{not json"


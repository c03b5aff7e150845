"""The outbox relay is woken by the write itself: an event stored by an HTTP request is on
the broker within 100 ms, with the slow poll out of the way (one hour)."""

from __future__ import annotations

from datetime import datetime

import pytest_asyncio

from cx_shared.events.applications import PartnershipFormed
from cx_shared.testing.consortium import consortium
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS

from .conftest import running_programme


@pytest_asyncio.fixture
async def programme_without_poll(run_service, infra, namespace, token):
    async for p in running_programme(run_service, infra, namespace, token, OUTBOX_POLL_SECONDS="3600"):
        yield p


async def test_event_stored_by_a_request_is_published_within_100_ms(programme_without_poll, infra, namespace):
    p = programme_without_poll
    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watch:
        # The first partnership of a fresh database also creates its collection (a table in
        # PostgreSQL) and the producer's first metadata: measured from the second on.
        for n in range(6):
            partnership = await p.ok("POST", "/partnerships", {
                "name": f"Wake-up {n}", "members": consortium(),
                "ecosystems": ["digital"], "contact_email": "office@wake.example"}, status=201)
            subject = partnership["partnership_id"]
            await watch.wait_for(lambda s=subject: watch.of_type(PartnershipFormed, s), what=f"partnership {n}")
            record = next(r for r in watch.records if dict(r.headers)["ce_subject"] == subject.encode())
            # ce_time: when the request made the event (just before storing it); the record's
            # timestamp: when the relay handed it to the producer.
            made = datetime.fromisoformat(dict(record.headers)["ce_time"].decode())
            published_ms = record.timestamp - made.timestamp() * 1000
            if n > 0:
                assert 0 <= published_ms < 100, f"published {published_ms:.0f} ms after it was stored"

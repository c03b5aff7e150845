"""Fixtures of the grants integration tests: upstream events built as their producers build
them, a publisher for them, and the grants service as a real process."""

from __future__ import annotations

import types
import uuid
from datetime import UTC, date, datetime

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from cx_shared.envelope import Envelope
from cx_shared.kafka import Publisher
from cx_shared.testing.kafka import TopicWatcher, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, ASSESSMENT, FINANCE, GRANTS, consumer_group
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmitted, ApplicationWithdrawn,
                                           CallPublished, ReportAccepted)
from cx_shared.events.assessment import ApplicationApproved, HostAccepted, HostDeclined
from cx_shared.events.common import Contact, Participant
from cx_shared.events.grants import PaymentConfirmed
from cx_shared.vocabulary import OrganisationType, Purpose

APPLICATIONS_SOURCE = "/clusterxchange/applications"
ASSESSMENT_SOURCE = "/clusterxchange/assessment"
FINANCE_SOURCE = "/partnership/finance"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def call_published(call_id: str, budget_cents: int, partnership_id: str = "p-1") -> Envelope:
    event = CallPublished(call_id=call_id, partnership_id=partnership_id, title="Exchanges 2026",
                          opens_on=date(2026, 1, 1), closes_on=date(2026, 12, 31), eligible_countries=["BE", "LT"],
                          budget_cents=budget_cents)
    return Envelope.wrap(event, source=APPLICATIONS_SOURCE, subject=call_id)


def participant(org_id: str, name: str, city: str, country: str) -> Participant:
    return Participant(organisation_id=org_id, legal_name=name, country=country, city=city,
                       organisation_type=OrganisationType.CLUSTER_ORGANISATION,
                       contact=Contact(name="Contact", email=f"{org_id}@example.org"))


def application_submitted(application_id: str, call_id: str, *, visitor_org: str = "org-v",
                          visitor_city: str = "Brussels", visitor_country: str = "BE", host_city: str = "Vilnius",
                          host_country: str = "LT", working_days: int = 10, travel_mode: str = "green") -> Envelope:
    event = ApplicationSubmitted(
        application_id=application_id, call_id=call_id, partnership_id="p-1",
        visitor=participant(visitor_org, "Visitor Cluster asbl", visitor_city, visitor_country),
        host=participant("org-h", "Host Klasteris", host_city, host_country),
        purposes=[Purpose.LEARN], planned_start=date(2026, 4, 6), planned_end=date(2026, 4, 17),
        working_days=working_days, travel_mode=travel_mode, submitted_at=datetime.now(UTC))
    return Envelope.wrap(event, source=APPLICATIONS_SOURCE, subject=application_id)


def application_approved(application_id: str, call_id: str) -> Envelope:
    return Envelope.wrap(ApplicationApproved(application_id=application_id, call_id=call_id, reasons=["eligible"]),
                         source=ASSESSMENT_SOURCE, subject=application_id)


def approved_and_accepted(application_id: str, call_id: str) -> tuple[Envelope, Envelope]:
    """What assessment publishes before grants may commit: its approval, then the host's acceptance."""
    return application_approved(application_id, call_id), host_accepted(application_id, call_id)


def host_accepted(application_id: str, call_id: str) -> Envelope:
    return Envelope.wrap(HostAccepted(application_id=application_id, call_id=call_id, host_id="org-h"),
                         source=ASSESSMENT_SOURCE, subject=application_id)


def host_declined(application_id: str, call_id: str) -> Envelope:
    return Envelope.wrap(HostDeclined(application_id=application_id, call_id=call_id, host_id="org-h",
                                      reason="no capacity"), source=ASSESSMENT_SOURCE, subject=application_id)


def application_withdrawn(application_id: str, call_id: str) -> Envelope:
    return Envelope.wrap(ApplicationWithdrawn(application_id=application_id, call_id=call_id, reason="ill"),
                         source=APPLICATIONS_SOURCE, subject=application_id)


def application_cancelled(application_id: str, call_id: str) -> Envelope:
    return Envelope.wrap(ApplicationCancelled(application_id=application_id, call_id=call_id, reason="host closed"),
                         source=APPLICATIONS_SOURCE, subject=application_id)


def payment_confirmed(payment_id: str, application_id: str, call_id: str, amount_cents: int) -> Envelope:
    event = PaymentConfirmed(payment_id=payment_id, application_id=application_id, call_id=call_id,
                             amount_cents=amount_cents, finance_reference=f"FIN-{payment_id}")
    return Envelope.wrap(event, source=FINANCE_SOURCE, subject=application_id)


def report_accepted(application_id: str, call_id: str, actual: int, accepted_by: str = "pm") -> Envelope:
    """The partnership's review accepted the report (applications), for an exchange planned for 10 days."""
    event = ReportAccepted(application_id=application_id, call_id=call_id, accepted_by=accepted_by,
                           actual_start=date(2026, 4, 6), actual_end=date(2026, 4, 15), actual_working_days=actual,
                           planned_working_days=10)
    return Envelope.wrap(event, source=APPLICATIONS_SOURCE, subject=application_id)


@pytest.fixture
def upstream():
    """The event builders above, for the tests."""
    return types.SimpleNamespace(call_published=call_published, application_submitted=application_submitted,
                                 application_approved=application_approved,
                                 approved_and_accepted=approved_and_accepted, host_accepted=host_accepted,
                                 host_declined=host_declined,
                                 application_withdrawn=application_withdrawn,
                                 application_cancelled=application_cancelled, payment_confirmed=payment_confirmed,
                                 report_accepted=report_accepted, new_id=new_id)


@pytest_asyncio.fixture
async def publish(infra, namespace):
    """Publish envelopes on this test's topics, as their producers would (one producer for all)."""
    publisher = Publisher(infra.kafka, namespace, "grants-tests")
    await publisher.start()

    async def send(*envelopes: Envelope) -> None:
        for envelope in envelopes:
            await publisher.publish(envelope)
    yield send
    await publisher.stop()


@pytest_asyncio.fixture
async def grants_db(infra, namespace):
    """The grants service's own database in this test (as named by the service_env fixture)."""
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    name = f"{namespace.replace('.', '')}_grants"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest_asyncio.fixture
async def http():
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def drained(infra, namespace):
    """Waits until the grants consumer group has handled every message of its input topics and
    its outbox relay has published what they caused: whatever was published before has been
    handled (a negative can then be asserted)."""
    async def wait(watcher: TopicWatcher | None = None, timeout: float = 60) -> None:
        await wait_consumed(infra.kafka, [consumer_group("grants", namespace)],
                            topic_names(namespace, APPLICATIONS, ASSESSMENT, FINANCE, GRANTS),
                            watcher=watcher, quiet=1.5, timeout=timeout)
    return wait

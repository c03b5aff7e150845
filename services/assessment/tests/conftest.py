"""Helpers for the assessment integration tests: upstream events as the applications and
grants services publish them, and a way to know the service has consumed everything."""

from __future__ import annotations

from types import SimpleNamespace
from datetime import UTC, date, datetime

import httpx
import pytest

from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ApplicationSubmitted, CallPublished, OrganisationEnrolled,
                                           OrganisationUpdated)
from cx_shared.events.common import Contact, Participant
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, consumer_group

APPLICATIONS_SOURCE, GRANTS_SOURCE = "/clusterxchange/applications", "/clusterxchange/grants"


# Real cities: assessment reserves the lump sum by rule, from the two cities' distance.
CAPITALS = {"FR": "Paris", "DE": "Berlin", "IT": "Rome", "ES": "Madrid", "UA": "Kyiv", "US": "Washington"}


def participant(org: str, country: str, kind: str = "cluster_organisation", cluster: str | None = None) -> Participant:
    return Participant(organisation_id=org, legal_name=f"{org} cluster", country=country, city=CAPITALS[country],
                       organisation_type=kind, cluster_name=cluster,
                       contact=Contact(name=f"{org} contact", email=f"contact@{org}.example.eu", language="fr"))


def call_published(call_id: str, budget_cents: int, mode: str = "automatic") -> Envelope:
    return Envelope.wrap(CallPublished(call_id=call_id, partnership_id="p-1", title="Digital twins",
                                       opens_on=date(2026, 1, 1), closes_on=date(2026, 12, 31),
                                       eligible_countries=["FR", "DE", "IT", "ES", "UA"], budget_cents=budget_cents,
                                       assessment_mode=mode),
                         source=APPLICATIONS_SOURCE, subject=call_id)


def submitted(app_id: str, call_id: str, *, visitor: Participant | None = None, host: Participant | None = None,
              working_days: int = 5, start: date = date(2026, 3, 2), end: date = date(2026, 3, 6),
              submitted_at: datetime = datetime(2026, 2, 1, 10, tzinfo=UTC)) -> Envelope:
    event = ApplicationSubmitted(application_id=app_id, call_id=call_id, partnership_id="p-1",
                                 visitor=visitor or participant(f"v-{app_id}", "FR"),
                                 host=host or participant(f"h-{app_id}", "DE"), purposes=["learn_from_other_cluster"],
                                 planned_start=start, planned_end=end, working_days=working_days,
                                 submitted_at=submitted_at)
    return Envelope.wrap(event, source=APPLICATIONS_SOURCE, subject=app_id)


def organisation(org: str, owner: str | None, revision: int = 1) -> Envelope:
    """An organisation's enrolment (revision 1) or update, with the subject that owns it."""
    contract = OrganisationEnrolled if revision == 1 else OrganisationUpdated
    event = contract(organisation_id=org, revision=revision, roles=["visitor", "host"], legal_name=f"{org} cluster",
                     country="FR", city="Capital", organisation_type="cluster_organisation",
                     contact=Contact(name=f"{org} contact", email=f"contact@{org}.example.eu"), owner=owner)
    return Envelope.wrap(event, source=APPLICATIONS_SOURCE, subject=org)


def from_grants(event) -> Envelope:
    return Envelope.wrap(event, source=GRANTS_SOURCE, subject=event.application_id)


@pytest.fixture
def publish(infra, namespace):
    async def send(*envelopes: Envelope) -> None:
        for envelope in envelopes:
            await publish_envelope(infra.kafka, envelope, namespace)
    return send


@pytest.fixture
def drained(infra, namespace):
    """Wait until the assessment consumer group has handled every record of its input topics
    and its outbox relay has published what they caused; given a watcher, until the watcher
    has collected all of it too (records of different partitions arrive in any order)."""
    async def wait(watcher: TopicWatcher | None = None, timeout: float = 60) -> None:
        await wait_consumed(infra.kafka, [consumer_group("assessment", namespace)],
                            topic_names(namespace, APPLICATIONS, GRANTS, ASSESSMENT),
                            watcher=watcher, quiet=1.5, timeout=timeout)
    return wait


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=20) as c:
        yield c


@pytest.fixture
def upstream():
    """The builders above, as a fixture (test modules cannot import conftest under
    pytest's importlib mode)."""
    return SimpleNamespace(call_published=call_published, submitted=submitted, participant=participant,
                           from_grants=from_grants, organisation=organisation)

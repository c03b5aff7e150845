"""Builders of upstream events (as their producers publish them) and readers of the SMTP sink."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationSubmitted, CallPublished, OrganisationEnrolled
from cx_shared.events.assessment import ApplicationApproved, ApplicationQueued, HostAccepted
from cx_shared.events.common import Contact, Participant
from cx_shared.events.grants import GrantAgreementAccepted, GrantAgreementIssued, GrantCommitted
from cx_shared.testing.kafka import publish_envelope
from cx_shared.testing.waiting import eventually
from pymongo import AsyncMongoClient


def participant(name: str, country: str, city: str, lang: str, email: str | None = None) -> Participant:
    org = f"org-{uuid.uuid4().hex[:8]}"
    return Participant(organisation_id=org, legal_name=name, country=country, city=city,
                       organisation_type="cluster_organisation",
                       contact=Contact(name=f"Contact of {name}", language=lang,
                                       email=email or f"{org}@example.org"))


def wrap(event, subject: str, producer: str) -> Envelope:
    return Envelope.wrap(event, source=f"/clusterxchange/{producer}", subject=subject)


def contact_addresses(envelope: Envelope) -> set[str]:
    """The organisations' contact addresses an enrolment or a submission carries."""
    data = envelope.data
    people = [data, data.get("visitor") or {}, data.get("host") or {}]
    return {p["contact"]["email"].lower() for p in people if isinstance(p.get("contact"), dict)}


class Upstream:
    """What applications, assessment and grants would publish, on this test's topics."""

    def __init__(self, kafka: str, namespace: str, mongodb_url: str):
        self.kafka, self.namespace, self.mongodb_url = kafka, namespace, mongodb_url

    async def publish(self, *envelopes: Envelope, confirmed: bool = True) -> None:
        """Publish; ``confirmed``: the people these events name have confirmed their addresses (as
        they would by the link of their first email), so that the test hears what it is about."""
        if confirmed:
            await self.confirm(*{a for e in envelopes for a in contact_addresses(e)})
        for e in envelopes:
            await publish_envelope(self.kafka, e, self.namespace)

    async def confirm(self, *addresses: str) -> None:
        client = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        try:
            confirmed = client[f"{self.namespace.replace('.', '')}_notifications"].confirmed_addresses
            for address in addresses:
                await confirmed.update_one({"_id": address}, {"$set": {"confirmed_at": datetime.now(UTC)}},
                                           upsert=True)
        finally:
            await client.close()

    @staticmethod
    def call(call_id: str, contact_email: str | None = None, mode: str = "automatic",
             partnership_id: str = "p-1") -> Envelope:
        return wrap(CallPublished(call_id=call_id, partnership_id=partnership_id, title="Photonics call 2026",
                                  opens_on=date(2026, 1, 1), closes_on=date(2027, 1, 1),
                                  eligible_countries=["FR", "DE", "IT"], budget_cents=10_000_000,
                                  assessment_mode=mode, contact_email=contact_email), call_id, "applications")

    @staticmethod
    def enrolled(p: Participant, role: str) -> Envelope:
        return wrap(OrganisationEnrolled(organisation_id=p.organisation_id, roles=[role], legal_name=p.legal_name,
                                         country=p.country, city=p.city, organisation_type=p.organisation_type,
                                         contact=p.contact), p.organisation_id, "applications")

    @staticmethod
    def submitted(app_id: str, call_id: str, visitor: Participant, host: Participant,
                  start_in_days: int = 30, days: int = 5, partnership_id: str = "p-1") -> Envelope:
        start = date.today() + timedelta(days=start_in_days)
        return wrap(ApplicationSubmitted(application_id=app_id, call_id=call_id, partnership_id=partnership_id,
                                         visitor=visitor, host=host, purposes=["learn_from_other_cluster"],
                                         planned_start=start, planned_end=start + timedelta(days=days),
                                         working_days=days, submitted_at=datetime.now(UTC)), app_id, "applications")

    @staticmethod
    def approved(app_id: str, call_id: str) -> Envelope:
        return wrap(ApplicationApproved(application_id=app_id, call_id=call_id, reasons=["eligible"]), app_id,
                    "assessment")

    @staticmethod
    def host_accepted(app_id: str, call_id: str, host: Participant) -> Envelope:
        return wrap(HostAccepted(application_id=app_id, call_id=call_id, host_id=host.organisation_id), app_id,
                    "assessment")

    @staticmethod
    def committed(app_id: str, call_id: str, total: int = 123_456) -> Envelope:
        return wrap(GrantCommitted(application_id=app_id, call_id=call_id, travel_cents=total - 23_456,
                                   subsistence_cents=23_456, total_cents=total, rule_set_version="default-v1",
                                   available_after_cents=5_000_000), app_id, "grants")


    @staticmethod
    def queued(app_id: str, call_id: str) -> Envelope:
        return wrap(ApplicationQueued(application_id=app_id, call_id=call_id, partnership_id="p-1"), app_id,
                    "assessment")

    @staticmethod
    def agreement_issued(app_id: str, call_id: str, visitor: Participant, total: int = 123_456) -> Envelope:
        return wrap(GrantAgreementIssued(application_id=app_id, call_id=call_id,
                                         visitor_organisation_id=visitor.organisation_id, total_cents=total,
                                         prefinancing_cents=total // 2, document_sha256="0" * 64,
                                         document_path=f"/agreements/{app_id}.pdf"), app_id, "grants")

    @staticmethod
    def agreement_accepted(app_id: str, call_id: str) -> Envelope:
        return wrap(GrantAgreementAccepted(application_id=app_id, call_id=call_id, accepted_by="visitor",
                                           document_sha256="0" * 64), app_id, "grants")


class Mailbox:
    """One reading of the sink. Other tests share it, so always ask by recipient."""

    def __init__(self, messages: list[dict]):
        self.messages = messages

    def to(self, address: str, subject: str | None = None) -> list[dict]:
        return [m for m in self.messages if address.lower() in (m["to"] or "").lower()
                and (subject is None or subject in (m["subject"] or ""))]


class Sink:
    """The SMTP sink's mail over HTTP. It returns every message ever received (slow as it grows),
    so tests read it as few times as they can: one reading answers many questions."""

    def __init__(self, url: str):
        self.url = url

    def read(self) -> Mailbox:
        return Mailbox(httpx.get(f"{self.url}/messages", timeout=30).json())

    def to(self, address: str, subject: str | None = None) -> list[dict]:
        return self.read().to(address, subject)

    async def wait(self, check, timeout: float = 60.0, what: str = "mail") -> Mailbox:
        """Read until ``check(mailbox)`` holds; returns that reading."""
        deadline = time.monotonic() + timeout
        while True:
            mailbox = await asyncio.to_thread(self.read)
            if check(mailbox):
                return mailbox
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.3)

    async def wait_for(self, address: str, subject: str | None = None, timeout: float = 60.0) -> list[dict]:
        mailbox = await self.wait(lambda mb: mb.to(address, subject), timeout, f"mail to {address} {subject or ''}")
        return mailbox.to(address, subject)


@pytest.fixture
def upstream(infra, namespace) -> Upstream:
    return Upstream(infra.kafka, namespace, infra.mongodb_url)


@pytest.fixture
def sink(infra) -> Sink:
    if not infra.smtp_sink_url:
        pytest.skip("no SMTP sink (SMTP_SINK_URL) in this environment")
    return Sink(infra.smtp_sink_url)


@pytest.fixture
def stored(infra, namespace):
    """Waits until the notifications service has stored a matching document: the sign that it
    has handled an event a later one depends on (events of other keys come in any order)."""
    async def wait(collection: str, query: dict, what: str, count: int = 1, timeout: float = 20) -> None:
        client = AsyncMongoClient(infra.mongodb_url)
        try:
            db = client[f"{namespace.replace('.', '')}_notifications"]

            async def enough() -> bool:
                return await db[collection].count_documents(query) >= count
            await eventually(enough, timeout, what)
        finally:
            await client.close()
    return wait


@pytest.fixture
def helpers():
    return SimpleNamespace(participant=participant, eventually=eventually, uid=lambda: uuid.uuid4().hex[:8])

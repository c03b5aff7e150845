"""A visitor's journey through the public APIs, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from cx_shared.testing.consortium import consortium


def next_monday(after_days: int) -> date:
    day = date.today() + timedelta(days=after_days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@dataclass
class Journey:
    applications: str
    token: object
    suffix: str = ""

    def __post_init__(self):
        self.suffix = self.suffix or uuid.uuid4().hex[:8]
        self.manager = self.token("programme_manager", subject="manager", programme=True)
        self.visitor_sub = f"visitor-{self.suffix}"
        self.host_sub = f"host-{self.suffix}"

    def post(self, path: str, body: dict, headers: dict, **kw) -> dict:
        response = httpx.post(f"{self.applications}{path}", json=body, headers=headers, timeout=20, **kw)
        assert response.status_code == 201, f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    def open_call(self, budget_cents: int = 1_000_000, assessment_mode: str = "automatic",
                  opens_on: date | None = None) -> dict:
        partnership = self.post("/partnerships", {
            "name": f"Photonics4Industry {self.suffix}", "members": consortium(), "ecosystems": ["electronics"],
            "contact_email": f"partnership-{self.suffix}@example.eu"}, self.manager)
        self.call = self.post("/calls", {
            "partnership_id": partnership["partnership_id"], "title": "Call 2027",
            "opens_on": str(opens_on or date.today() - timedelta(days=1)),
            "closes_on": str(date.today() + timedelta(days=200)),
            "budget_cents": budget_cents, "assessment_mode": assessment_mode}, self.manager)
        return self.call

    def enrol(self, role: str, subject: str, country: str, city: str, email: str, language: str) -> dict:
        return self.post("/organisations", {
            "legal_name": f"{city} cluster {self.suffix}", "country": country, "city": city,
            "organisation_type": "cluster_organisation", "ecosystems": ["electronics"], "roles": [role],
            "contact": {"name": f"{role} contact", "email": email, "language": language}},
            self.token(role, subject=subject))

    def enrol_pair(self, confirm: bool = True) -> None:
        """The visitor and the host enrol, and their contact people confirm their addresses (by the
        link of notifications' first email, when a mail sink is there to read it; ``confirm=False``
        where notifications does not run)."""
        self.visitor_email = f"visitor-{self.suffix}@example.es"
        self.visitor = self.enrol("visitor", self.visitor_sub, "ES", "Madrid", self.visitor_email, "en")
        self.host = self.enrol("host", self.host_sub, "DE", "Munich", f"host-{self.suffix}@example.de", "de")
        contacts = (self.visitor_email, f"host-{self.suffix}@example.de")
        self.confirmation_tokens = {a: confirm_address(a) if confirm else None for a in contacts}

    @property
    def visitor_headers(self) -> dict:
        return self.token("visitor", subject=self.visitor_sub, organisation_id=self.visitor["organisation_id"])

    @property
    def host_headers(self) -> dict:
        return self.token("host", subject=self.host_sub, organisation_id=self.host["organisation_id"])

    def submit(self, **extra) -> dict:
        return self.post("/applications", self.application_body(self.visitor, next_monday(40), **extra),
                         self.visitor_headers)

    def try_submit(self, visitor: dict, headers: dict, weeks_ahead: int, **extra) -> httpx.Response:
        """Submit a visit of `visitor` starting some weeks after the next Monday 30 days from now; the
        answer as it is (a refusal too)."""
        body = self.application_body(visitor, next_monday(30 + 7 * weeks_ahead), **extra)
        return httpx.post(f"{self.applications}/applications", json=body, headers=headers, timeout=20)

    def application_body(self, visitor: dict, start: date, **extra) -> dict:
        """A five-day visit of `visitor` to the journey's host in its call, from `start`."""
        return {"call_id": self.call["call_id"], "visitor_id": visitor["organisation_id"],
                "host_id": self.host["organisation_id"], "purposes": ["learn_from_other_cluster"],
                "objectives": "Learn how the host runs its photonics pilot line.",
                "planned_start": str(start), "planned_end": str(start + timedelta(days=4)), "travel_mode": "green",
                **extra}

    def status(self, application_id: str, headers: dict | None = None) -> dict:
        """The exchange as its visitor reads it (or as `headers` do)."""
        response = httpx.get(f"{self.applications}/applications/{application_id}",
                             headers=headers or self.visitor_headers, timeout=20)
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_status(self, application_id: str, wanted: str, timeout: float = 60,
                          headers: dict | None = None) -> dict:
        """Wait for the status, read as the visitor (or as `headers` do)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.status(application_id, headers)
            if seen["status"] == wanted:
                return seen
            await asyncio.sleep(0.3)
        raise AssertionError(f"status {wanted!r} not reached in {timeout}s; last: {seen}")


def confirm_address(address: str, timeout: float = 60) -> str | None:
    """Follow the confirmation link notifications mails to a new contact address (its token POSTed
    in the body, as the page's button does); the token, or None without a mail sink."""
    sink = os.environ.get("SMTP_SINK_URL")
    if not sink:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"(http://[^\s\"<>]+)/confirmations/([\w-]+)", json.dumps(mail_to(sink, address)))
        if found:
            done = httpx.post(f"{found[1]}/confirmations", data={"token": found[2]}, timeout=20)
            assert done.status_code == 200, done.text
            return found[2]
        time.sleep(0.3)
    raise AssertionError(f"no confirmation email to {address} in {timeout}s")


def mail_to(sink_url: str, address: str) -> list[dict]:
    return httpx.get(f"{sink_url}/messages", params={"to": address}, timeout=10).json()


async def wait_mail_settled(notifications_url: str, application_id: str, headers: dict, timeout: float = 60) -> None:
    """Wait until no email of this application is still pending or being sent: the mailer
    works apart from the consumer, so a caught-up consumer can still have mail in hand."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{notifications_url}/notifications", params={"application_id": application_id},
                             headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        items = response.json()
        if items and all(n["status"] not in ("pending", "sending") for n in items):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"emails of {application_id} still pending after {timeout}s")


def verified(grants_url: str, action: dict, initiator: dict, verifier: dict) -> dict:
    """Four eyes (issue 23): the initiator's own verification is refused and changes nothing; another
    officer's verifies the action, which takes effect once."""
    url = f"{grants_url}/actions/{action['action_id']}/verification"
    refused = httpx.post(url, headers=initiator, timeout=20)
    assert refused.status_code == 403 and "initiator_cannot_verify" in refused.text, refused.text
    done = httpx.post(url, headers=verifier, timeout=20)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    return done.json()


async def pending_action(grants_url: str, call_id: str, kind: str, headers: dict, application_id: str | None = None,
                         timeout: float = 60) -> dict:
    """The action of `kind` (about `application_id`) awaiting verification, once grants shows it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        actions = httpx.get(f"{grants_url}/calls/{call_id}/actions", headers=headers, timeout=20).json()
        for action in actions:
            if (action["kind"], action["status"], action["application_id"]) == (kind, "pending", application_id):
                return action
        await asyncio.sleep(0.2)
    raise AssertionError(f"no pending {kind} for {application_id or call_id}")

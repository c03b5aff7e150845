"""Issue 13 (g), calls: a partnership closes its call early (no application accepted after it)
and cancels it: every exchange of the call not yet granted is cancelled, assessment gives back
what it held for it, grants keeps the grant already committed, and the parties are emailed; over
the four services as running processes on the real broker and database."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cx_shared.events.applications import ApplicationCancelled, CallCancelled, CallClosed
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS
from tests.journey import Journey, mail_to

pytestmark = pytest.mark.infra


@pytest.fixture
def system(run_service):
    return {name: run_service(name) for name in ("applications", "assessment", "grants", "notifications")}


def call(method: str, url: str, headers: dict, body: dict | None = None) -> httpx.Response:
    return httpx.request(method, url, json=body, headers=headers, timeout=30)


async def test_issue_13g_calls_are_closed_early_and_cancelled(system, infra, namespace, token):
    apps, assessment = system["applications"].url, system["assessment"].url
    journey = Journey(apps, token)
    call_id = journey.open_call(budget_cents=2_000_000)["call_id"]
    journey.enrol_pair()
    subject = f"visitor-2-{journey.suffix}"
    email = f"v2-{journey.suffix}@example.eu"
    second = journey.enrol("visitor", subject, "PT", "Lisbon", email, "en")
    second_headers = token("visitor", subject=subject, organisation_id=second["organisation_id"])

    # A: granted (the host accepted, grants committed); B: approved, its lump sum held by assessment.
    granted = journey.try_submit(journey.visitor, journey.visitor_headers, 0).json()["application_id"]
    await journey.wait_status(granted, "approved", headers=journey.manager)
    accepted = call("POST", f"{assessment}/applications/{granted}/host-decision", journey.host_headers,
                    {"accept": True})
    assert accepted.status_code < 300, accepted.text
    await journey.wait_status(granted, "grant_committed", headers=journey.manager)
    held = journey.try_submit(second, second_headers, 2).json()["application_id"]
    await journey.wait_status(held, "approved", headers=journey.manager)

    url = f"{apps}/calls/{call_id}"
    other_manager = token("programme_manager", subject="another", partnership_ids=("ptn-other",))
    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watch:
        # Closed early: open no more, no application accepted after it.
        assert call("POST", f"{url}/closure", other_manager, {}).status_code == 403
        closed = call("POST", f"{url}/closure", journey.manager, {"reason": "enough applications"})
        assert closed.status_code == 200 and closed.json()["open"] is False, closed.text
        assert call("POST", f"{url}/closure", journey.manager, {}).status_code == 409
        late = journey.try_submit(second, second_headers, 5)
        assert late.status_code == 422 and ("call_id", "call_open") in {
            (e["field"], e["rule"]) for e in late.json()["errors"]}
        await watch.wait_for(lambda: watch.of_type(CallClosed, call_id), what="call.closed")

        # Cancelled: B is cancelled (caused by the call's cancellation), A keeps its grant.
        cancelled = call("POST", f"{url}/cancellation", journey.manager, {"reason": "the partnership ends"})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        assert call("POST", f"{url}/cancellation", journey.manager, {"reason": "again"}).status_code == 409
        (announced,) = await watch.wait_for(lambda: watch.of_type(CallCancelled, call_id), what="call.cancelled")
        (cancellation,) = await watch.wait_for(lambda: watch.of_type(ApplicationCancelled, held),
                                               what="application.cancelled")
        assert cancellation.causationid == announced.id
        assert "the partnership ends" in cancellation.data["reason"]
    await journey.wait_status(held, "cancelled", headers=journey.manager)
    assert journey.status(granted, journey.manager)["status"] == "grant_committed"
    assert not watch.of_type(ApplicationCancelled, granted)

    # The money: assessment holds nothing for B any more; what it holds is what grants commits.
    officer = token("grant_officer", subject="officer", partnership_ids=(journey.call["partnership_id"],))
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        book = call("GET", f"{assessment}/calls/{call_id}", journey.manager).json()
        entry = next(e for e in book["entries"] if e["application_id"] == held)
        if entry["reserved_cents"] == 0 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    assert entry["reserved_cents"] == 0, entry
    budget = call("GET", f"{system['grants'].url}/calls/{call_id}/budget", officer).json()
    held_by_assessment = sum(e["reserved_cents"] for e in book["entries"])
    assert held_by_assessment == budget["committed_cents"] > 0, (book, budget)
    assert book["envelope_left_cents"] == budget["available_cents"], (book, budget)

    # The visitor of the cancelled exchange is told.
    deadline = asyncio.get_running_loop().time() + 60
    wanted = f"Exchange {held} was cancelled"
    while not any(m["subject"] == wanted and "the partnership ends" in m["text"]
                  for m in mail_to(infra.smtp_sink_url, email)):
        assert asyncio.get_running_loop().time() < deadline, mail_to(infra.smtp_sink_url, email)
        await asyncio.sleep(0.5)

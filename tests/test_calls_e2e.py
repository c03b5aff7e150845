"""Issue 13 (g), calls: a partnership closes its call early (no application accepted after it)
and cancels it: every exchange of the call not yet granted is cancelled, assessment gives back
what it held for it, grants keeps the grant already committed, and the parties are emailed.
Before it opens, the partnership edits its call's dates, eligible countries and budget (a
CallUpdated against its revision) and every service that keeps the call folds it: assessment's
envelope and rule set, grants' budget (top-ups kept), notifications' copy; redelivered, it
changes nothing; once the call has opened a change is refused naming the rule. Over the four
services as running processes on the real broker and database."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from cx_shared.events.applications import ApplicationCancelled, CallCancelled, CallClosed, CallUpdated
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, GRANTS, SERVICES, consumer_group
from tests.journey import Journey, confirm_address, mail_to, verified

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
    confirm_address(email)  # its contact person follows the link of notifications' first email
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


def ok(method: str, url: str, headers: dict, body: dict | None = None) -> dict:
    response = call(method, url, headers, body)
    assert response.status_code == 200, f"{method} {url}: {response.status_code} {response.text}"
    return response.json()


def refused(response: httpx.Response, status: int) -> set[tuple[str, str]]:
    assert response.status_code == status, response.text
    return {(e["field"], e["rule"]) for e in response.json().get("errors", [])}


async def test_issue_13g_calls_change_until_they_open(system, infra, namespace, token):
    apps, assessment, grants = (system[s].url for s in ("applications", "assessment", "grants"))
    journey = Journey(apps, token)
    opens = date.today() + timedelta(days=10)
    created = journey.open_call(budget_cents=1_000_000, opens_on=opens)
    call_id = created["call_id"]
    url = f"{apps}/calls/{call_id}"
    officer = token("grant_officer", subject="officer", partnership_ids=(created["partnership_id"],))
    at_rest = [consumer_group(s, namespace) for s in SERVICES], topic_names(namespace, APPLICATIONS, GRANTS)
    await wait_consumed(infra.kafka, *at_rest)
    before = ok("GET", f"{assessment}/calls/{call_id}", journey.manager)
    top_up = httpx.post(f"{grants}/calls/{call_id}/budget/top-ups", headers=officer, timeout=20,
                        json={"amount_cents": 200_000, "reason": "early"})
    assert top_up.status_code == 202, top_up.text  # four eyes (issue 23): a second officer verifies it
    verified(grants, top_up.json(), officer,
             token("grant_officer", subject="second-officer", partnership_ids=(created["partnership_id"],)))

    # Who and what: another partnership's manager, a stale revision, a broken rule change nothing.
    other = token("programme_manager", subject="another", partnership_ids=("ptn-other",))
    assert call("PATCH", url, other, {"revision": 1, "title": "Mine"}).status_code == 403
    assert ("revision", "") in refused(call("PATCH", url, journey.manager, {"revision": 2, "title": "x"}), 409)
    assert ("closes_on", "closes_after_opens") in refused(call("PATCH", url, journey.manager, {
        "revision": 1, "closes_on": str(opens - timedelta(days=1))}), 422)
    assert ("opens_on", "not_before_today") in refused(call("PATCH", url, journey.manager, {
        "revision": 1, "opens_on": str(date.today() - timedelta(days=1))}), 422)
    assert ok("GET", url, journey.manager)["revision"] == 1

    later, end = opens + timedelta(days=7), date.today() + timedelta(days=150)
    countries = [c for c in created["eligible_countries"] if c != "IT"]
    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watch:
        changed = ok("PATCH", url, journey.manager, {
            "revision": 1, "title": "Call 2027, first round", "opens_on": str(later), "exchanges_end_on": str(end),
            "eligible_countries": countries, "budget_cents": 1_500_000})
        assert (changed["revision"], changed["opens_on"], changed["budget_cents"]) == (2, str(later), 1_500_000)
        lowered = ok("PATCH", url, journey.manager, {"revision": 2, "budget_cents": 1_200_000})
        assert lowered["revision"] == 3 and lowered["title"] == "Call 2027, first round"
        await watch.wait_for(lambda: len(watch.of_type(CallUpdated, call_id)) == 2, what="two call.updated")
        update = watch.of_type(CallUpdated, call_id)[0]
        assert (update.data["budget_change_cents"], update.data["updated_by"]) == (500_000, "manager")
    await wait_consumed(infra.kafka, *at_rest)

    def folded() -> tuple[dict, dict]:
        return ok("GET", f"{assessment}/calls/{call_id}", journey.manager), \
            ok("GET", f"{grants}/calls/{call_id}/budget", officer)

    book, budget = folded()
    # the budget is the call's new one plus the top-up, in both services; nothing reserved
    assert (book["budget_cents"], book["envelope_left_cents"]) == (1_400_000, 1_400_000)
    assert (budget["budget_cents"], budget["available_cents"], budget["title"]) == (
        1_400_000, 1_400_000, "Call 2027, first round")
    assert ok("GET", f"{grants}/calls/{call_id}/reconciliation", officer)["balanced"] is True
    kinds = [(e["kind"], e["amount_cents"]) for e in ok("GET", f"{grants}/calls/{call_id}/ledger", officer)]
    assert kinds[-2:] == [("budget_raised", 500_000), ("budget_lowered", 300_000)]
    # assessment's dates and a new rule-set version with the call's countries and last day
    assert (book["opens_on"], book["revision"], book["rule_set_version"]) == (str(later), 3, "default-v1@2")
    params = {r["rule"]: r["params"] for r in book["policies"][-1]["rules"]}
    assert params["eligible_countries"]["countries"] == countries
    assert params["dates_inside_call"] == {"exchanges_end_by": str(end)}
    assert before["rule_set_version"] == "default-v1@1"
    # notifications' copy of the call (its title and contact reach the emails)
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    try:
        kept = await client[f"{namespace}_notifications"].calls.find_one({"_id": call_id})
    finally:
        await client.close()
    assert (kept["title"], kept["revision"], kept["budget_cents"]) == ("Call 2027, first round", 3, 1_200_000)

    # Redelivered (at least once delivery), the first change is folded again by nobody.
    await publish_envelope(infra.kafka, update)  # as read back: its topic is the namespace's
    await wait_consumed(infra.kafka, *at_rest)
    assert folded() == (book, budget)

    # Once a call has opened it is refused, naming the rule; nothing changes.
    opened = Journey(apps, token).open_call()
    response = call("PATCH", f"{apps}/calls/{opened['call_id']}", journey.manager, {"revision": 1, "title": "Late"})
    assert ("opens_on", "before_opening") in refused(response, 409)
    assert ok("GET", f"{apps}/calls/{opened['call_id']}", journey.manager)["title"] == "Call 2027"

"""Issue 7 across the four running services, over the real broker, database and SMTP sink:
an exchange taken through preparation, start, a shorter completion, report and acceptance to
the reduced balance payment; a no-show releasing the grant; a late report escalated, blocking
the balance until it is accepted."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import httpx
import pytest

from cx_shared.events.applications import ExchangeNoShow, ReportAccepted, ReportOverdue
from cx_shared.events.grants import CommitmentReduced, CommitmentReleased, GrantCommitted, PaymentOrdered
from cx_shared.testing.catalog import off_catalog
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.testing.consortium import consortium
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS
from tests.journey import Journey, mail_to, pending_action, verified

pytestmark = pytest.mark.infra
ALL = (APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS)
BUDGET = 1_000_000
DAYS_AHEAD = 200  # the applications service's follow-up clock runs this far ahead: report deadlines pass


@pytest.fixture
def system(run_service):
    return {"applications": run_service("applications", CLOCK_OFFSET_SECONDS=str(DAYS_AHEAD * 86400),
                                        OVERDUE_POLL_SECONDS="0.5"),
            **{name: run_service(name) for name in ("assessment", "grants", "notifications")}}


def quiet_week(after_days: int) -> date:
    """A Monday whose week has no German national public holiday: Mon..Fri are 5 working days."""
    day = date.today() + timedelta(days=after_days)
    day += timedelta(days=(7 - day.weekday()) % 7)
    while any(day + timedelta(days=i) in holidays.country_holidays("DE", years=day.year) for i in range(5)):
        day += timedelta(days=7)
    return day


def call(method: str, url: str, headers: dict, body: dict | None = None, status: int = 200) -> dict:
    response = httpx.request(method, url, json=body, headers=headers, timeout=20)
    assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text}"
    return response.json()


async def signed_exchange(system: dict, token, report_due_days: int) -> tuple[Journey, str, date]:
    """A visitor's exchange up to the signed grant agreement, through the services' public APIs."""
    journey = Journey(system["applications"].url, token)
    partnership = journey.post("/partnerships", {
        "name": f"GreenTech {journey.suffix}", "members": consortium(), "ecosystems": ["electronics"],
        "contact_email": f"partnership-{journey.suffix}@example.eu"}, journey.manager)
    journey.call = journey.post("/calls", {
        "partnership_id": partnership["partnership_id"], "title": "Follow-up call",
        "opens_on": str(date.today() - timedelta(days=1)), "closes_on": str(date.today() + timedelta(days=200)),
        "budget_cents": BUDGET, "assessment_mode": "automatic", "report_due_days": report_due_days}, journey.manager)
    journey.enrol_pair()
    start = quiet_week(40)
    app_id = journey.submit(planned_start=str(start), planned_end=str(start + timedelta(days=4)))["application_id"]
    await journey.wait_status(app_id, "approved")
    call("POST", f"{system['assessment'].url}/applications/{app_id}/host-decision", journey.host_headers,
         {"accept": True})
    await journey.wait_status(app_id, "grant_committed")
    call("POST", f"{system['grants'].url}/agreements/{app_id}/acceptance", journey.visitor_headers)
    await journey.wait_status(app_id, "agreement_signed")
    return journey, app_id, start


def budget_of(system: dict, journey: Journey) -> dict:
    return call("GET", f"{system['grants'].url}/calls/{journey.call['call_id']}/budget", journey.manager)


def orders(watch: TopicWatcher, app_id: str, kind: str) -> list[PaymentOrdered]:
    return [e.event() for e in watch.of_type(PaymentOrdered, app_id) if e.event().kind == kind]


async def test_a_shorter_exchange_is_reported_accepted_and_its_reduced_balance_ordered(system, infra, namespace,
                                                                                       token):
    async with TopicWatcher(infra.kafka, topic_names(namespace, *ALL)) as watch:
        journey, app_id, start = await signed_exchange(system, token, report_due_days=365)
        api = f"{journey.applications}/applications/{app_id}"
        ready = call("PUT", f"{api}/preparation", journey.visitor_headers,
                     {"travel_booked": True, "insurance": True, "agenda_agreed": True})
        assert ready["preparation"]["ready"] is True
        call("POST", f"{api}/start", journey.host_headers, {"actual_start": str(start + timedelta(days=1))})
        done = call("POST", f"{api}/complete", journey.host_headers, {"actual_end": str(start + timedelta(days=3))})
        assert (done["actual_working_days"], done["working_days"]) == (3, 5)
        call("POST", f"{api}/report", journey.visitor_headers,
             {"summary": "A pilot line visit", "outcomes": ["technology_taken_up"], "satisfaction": 5})
        call("POST", f"{api}/report/review", journey.manager, {"accept": True})

        accepted = (await watch.wait_for(lambda: watch.of_type(ReportAccepted, app_id), what="ReportAccepted"))[0]
        assert (accepted.event().actual_working_days, accepted.event().planned_working_days) == (3, 5)
        # Issue 23: the review initiated the balance in the manager's name; his own verification is
        # refused and orders nothing; a second officer's verification pays exactly once.
        action = await pending_action(system["grants"].url, accepted.event().call_id, "balance_payment",
                                      journey.manager, app_id)
        assert action["initiated_by"] == "manager" and not orders(watch, app_id, "balance")
        officer = token("grant_officer", subject="second-officer", partnership_ids=(journey.call["partnership_id"],))
        verified(system["grants"].url, action, journey.manager, officer)
        again = httpx.post(f"{system['grants'].url}/actions/{action['action_id']}/verification", headers=officer)
        assert again.status_code in (200, 409)  # a retry: nothing more
        balance = (await watch.wait_for(lambda: orders(watch, app_id, "balance"), what="the balance order"))[0]
        assert (balance.accepted_by, balance.verified_by) == ("manager", "second-officer")
        assert len(orders(watch, app_id, "balance")) == 1
        committed = watch.of_type(GrantCommitted, app_id)[0].event()
        prefinancing = orders(watch, app_id, "prefinancing")[0]
        reduced = watch.of_type(CommitmentReduced, app_id)[0].event()
        assert off_catalog(watch.records, namespace) == []  # every record as the event catalog says
    # grants' rule: subsistence for the actual working days (3 of 5), travel unchanged
    daily = committed.subsistence_cents // 5
    assert reduced.released_cents == 2 * daily
    assert balance.amount_cents == committed.travel_cents + 3 * daily - prefinancing.amount_cents
    assert budget_of(system, journey)["available_cents"] == BUDGET - committed.total_cents + 2 * daily
    timeline = (await journey.wait_status(app_id, "reported"))["timeline"]
    await watch_timeline(journey, app_id, "payment.ordered", "balance")
    events = [e["event"] for e in journey.status(app_id)["timeline"]]
    for name in ("preparation.updated", "exchange.started", "exchange.completed", "report.submitted",
                 "report.accepted", "commitment.reduced", "payment.ordered"):
        assert name in events, (name, events)
    assert timeline[0]["event"] == "application.submitted"
    mails = await wait_mail(infra, journey.visitor_email, "Balance of")
    assert mails, "the visitor was not told of the balance"


async def test_a_no_show_cancels_the_exchange_and_releases_its_grant_once(system, infra, namespace, token):
    async with TopicWatcher(infra.kafka, topic_names(namespace, *ALL)) as watch:
        journey, app_id, _ = await signed_exchange(system, token, report_due_days=30)
        api = f"{journey.applications}/applications/{app_id}"
        cancelled = call("POST", f"{api}/no-show", journey.host_headers, {"reason": "The visitor never arrived"})
        assert cancelled["status"] == "cancelled"
        await watch.wait_for(lambda: watch.of_type(ExchangeNoShow, app_id), what="ExchangeNoShow")
        released = (await watch.wait_for(lambda: watch.of_type(CommitmentReleased, app_id),
                                         what="CommitmentReleased"))[0].event()
        committed = watch.of_type(GrantCommitted, app_id)[0].event()
        prefinancing = orders(watch, app_id, "prefinancing")[0].amount_cents
        # the host's German email and the visitor's English one
        assert await wait_mail(infra, f"host-{journey.suffix}@example.de", "hat nicht stattgefunden")
        assert await wait_mail(infra, journey.visitor_email, "did not take place")
        assert len(watch.of_type(CommitmentReleased, app_id)) == 1
    # what was not ordered returns to the budget; the pre-financing order stays until finance confirms
    assert released.released_cents == committed.total_cents - prefinancing
    budget = budget_of(system, journey)
    assert (budget["available_cents"], budget["committed_cents"]) == (BUDGET - prefinancing, prefinancing)
    await watch_timeline(journey, app_id, "commitment.released", "")
    assert journey.status(app_id)["status"] == "cancelled"


async def test_a_late_report_is_escalated_blocks_the_balance_until_accepted(system, infra, namespace, token):
    async with TopicWatcher(infra.kafka, topic_names(namespace, *ALL)) as watch:
        journey, app_id, start = await signed_exchange(system, token, report_due_days=1)
        api = f"{journey.applications}/applications/{app_id}"
        call("POST", f"{api}/start", journey.host_headers)
        call("POST", f"{api}/complete", journey.host_headers)
        overdue = (await watch.wait_for(lambda: watch.of_type(ReportOverdue, app_id), what="ReportOverdue"))[0]
        assert overdue.event().due_on == start + timedelta(days=5)
        blocked = journey.status(app_id)
        assert (blocked["status"], blocked["report_overdue"], blocked["balance_blocked"]) == ("completed", True, True)
        # (not necessarily the last entry: emails sent meanwhile join the timeline too)
        assert any("balance is blocked" in entry["summary"] for entry in blocked["timeline"])
        assert await wait_mail(infra, journey.visitor_email, "Report overdue")
        assert not orders(watch, app_id, "balance")  # nothing paid while no report is accepted
        late = call("POST", f"{api}/report", journey.visitor_headers, {"summary": "Sorry, late", "satisfaction": 4})
        assert late["report"]["late"] is True and late["balance_blocked"] is True
        accepted = call("POST", f"{api}/report/review", journey.manager, {"accept": True})
        assert accepted["balance_blocked"] is False
        action = await pending_action(system["grants"].url, journey.call["call_id"], "balance_payment",
                                      journey.manager, app_id)
        officer = token("grant_officer", subject="second-officer", partnership_ids=(journey.call["partnership_id"],))
        verified(system["grants"].url, action, journey.manager, officer)
        balance = (await watch.wait_for(lambda: orders(watch, app_id, "balance"), what="the balance order"))[0]
        committed = watch.of_type(GrantCommitted, app_id)[0].event()
        prefinancing = orders(watch, app_id, "prefinancing")[0]
    assert balance.amount_cents == committed.total_cents - prefinancing.amount_cents  # full length: no reduction
    assert len(watch.of_type(ReportOverdue, app_id)) == 1


async def watch_timeline(journey: Journey, app_id: str, event: str, text: str, timeout: float = 30) -> None:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["event"] == event and text in e["summary"] for e in journey.status(app_id)["timeline"]):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{event} ({text}) not in the timeline of {app_id}")


async def wait_mail(infra, address: str, subject_part: str, timeout: float = 30) -> list[dict]:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in mail_to(infra.smtp_sink_url, address) if subject_part in str(m.get("subject", m))]
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"no email to {address} with {subject_part!r}: {mail_to(infra.smtp_sink_url, address)}")

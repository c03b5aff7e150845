"""Preparation, the exchange, the report and its review, over HTTP and the real broker and
database: what the host and the partnership state becomes the events grants pays from."""

from __future__ import annotations

from datetime import date, timedelta

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ExchangeNoShow, ReportAccepted, ReportChangesRequested, ReportOverdue
from cx_shared.events.assessment import ApplicationApproved, HostAccepted
from cx_shared.events.grants import GrantAgreementAccepted, GrantCommitted
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, topic_names
from cx_shared.topics import APPLICATIONS

from applications import followup



async def inject(p, infra, application: dict, event_cls, **fields) -> None:
    """Publish an upstream event as its producer would, and wait until the exchange folded it."""
    event = event_cls(application_id=application["application_id"], call_id=application["call_id"], **fields)
    envelope = Envelope.wrap(event, source="/clusterxchange/" + event.topic.producer,
                             subject=application["application_id"])
    await publish_envelope(infra.kafka, envelope, p.namespace)
    await p.eventually(lambda: p.db.applications.find_one({"_id": application["application_id"]}),
                       lambda doc: envelope.id in doc["processed"])


async def signed_exchange(p, infra, quiet, **call) -> tuple[dict, dict, dict, str, date]:
    """An exchange whose grant agreement is signed (upstream decisions injected), 5 planned working days."""
    vt, ht = p.token("visitor", subject="vera"), p.token("host", subject="hans")
    _, made_call = await p.partnership_and_call(**call)
    visitor = await p.enrol(vt, "FR", "Lyon", ["visitor"])
    host = await p.enrol(ht, "DE", "Berlin", ["host"])
    start = quiet(40)
    application = await p.ok("POST", "/applications", p.application_body(made_call, visitor, host, start), vt,
                             status=201)
    assert application["working_days"] == 5
    await inject(p, infra, application, ApplicationApproved)
    await inject(p, infra, application, HostAccepted, host_id=host["organisation_id"])
    await inject(p, infra, application, GrantCommitted, travel_cents=21_000, subsistence_cents=90_000,
                 total_cents=111_000, rule_set_version="default-v1", available_after_cents=0)
    await inject(p, infra, application, GrantAgreementAccepted, accepted_by="vera", document_sha256="ab" * 32)
    return vt, ht, application, f"/applications/{application['application_id']}", start


async def test_preparation_start_shorter_completion_report_review_and_acceptance(programme, infra, quiet):
    p = programme
    vt, ht, application, path, start = await signed_exchange(p, infra, quiet)
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        # preparation: the visitor ticks the checklist off (the host cannot)
        assert (await p.client.put(f"{path}/preparation", json={"travel_booked": True}, headers=ht)).status_code == 403
        half = await p.ok("PUT", f"{path}/preparation", {"travel_booked": True, "insurance": True}, vt)
        assert half["preparation"] == {"travel_booked": True, "insurance": True, "agenda_agreed": False,
                                       "ready": False}
        ready = await p.ok("PUT", f"{path}/preparation",
                           {"travel_booked": True, "insurance": True, "agenda_agreed": True}, vt)
        assert ready["preparation"]["ready"] is True and ready["status"] == "agreement_signed"
        # the host confirms the arrival a day late and the departure a day early: 3 working days of 5
        started = await p.ok("POST", f"{path}/start", {"actual_start": str(start + timedelta(days=1))}, ht)
        assert started["status"] == "in_progress" and started["actual_start"] == str(start + timedelta(days=1))
        assert (await p.client.put(f"{path}/preparation", json={}, headers=vt)).status_code == 409  # too late
        impossible = await p.post(f"{path}/complete", {"actual_end": str(start)}, ht)
        assert impossible.status_code == 422 and impossible.json()["errors"][0]["rule"] == "end_after_start"
        done = await p.ok("POST", f"{path}/complete", {"actual_end": str(start + timedelta(days=3))}, ht)
        assert (done["status"], done["actual_working_days"], done["report_state"]) == ("completed", 3, "due")
        assert done["report_due_on"] == str(start + timedelta(days=33))  # the call's default: 30 days
        # host feedback, then the visitor's report
        feedback = await p.ok("POST", f"{path}/host-feedback", {"satisfaction": 4, "free_text": "Keen visitor"}, ht)
        assert feedback["host_feedback"]["satisfaction"] == 4
        bad = await p.post(f"{path}/report", {"summary": "ok", "satisfaction": 9}, vt)
        assert bad.status_code == 422 and "satisfaction" in bad.text
        report = {"summary": "Two joint projects started", "learnt": "Grid storage at scale",
                  "outcomes": ["new_collaboration", "follow_up_project"], "satisfaction": 5, "free_text": "Thanks"}
        reported = await p.ok("POST", f"{path}/report", report, vt)
        assert reported["status"] == "reported" and reported["report"]["learnt"] == "Grid storage at scale"
        # the partnership asks for changes (reasons required; a visitor cannot review)
        assert (await p.post(f"{path}/report/review", {"accept": True}, vt)).status_code == 403
        no_reason = await p.post(f"{path}/report/review", {"accept": False, "reasons": []})
        assert no_reason.status_code == 422
        back = await p.ok("POST", f"{path}/report/review", {"accept": False, "reasons": ["Name the projects"]})
        assert (back["status"], back["report_state"]) == ("completed", "changes_requested")
        assert (await p.post(f"{path}/report/review", {"accept": True})).status_code == 409  # nothing to review
        await p.ok("POST", f"{path}/report", {**report, "summary": "Projects H2-Link and GridLab started"}, vt)
        officer = p.token("grant_officer", subject="olga", partnership_ids=(application["partnership_id"],))
        accepted = await p.ok("POST", f"{path}/report/review", {"accept": True}, officer)
        assert (accepted["status"], accepted["report_state"], accepted["balance_blocked"]) == (
            "reported", "accepted", False)
        assert (await p.post(f"{path}/report/review", {"accept": True}, officer)).status_code == 409  # once
        published = await watcher.wait_for(lambda: watcher.of_type(ReportAccepted, application["application_id"]),
                                           30, "ReportAccepted")
        assert len(watcher.of_type(ReportChangesRequested, application["application_id"])) == 1
    event = published[0].event()
    assert (event.actual_start, event.actual_end) == (start + timedelta(days=1), start + timedelta(days=3))
    assert (event.actual_working_days, event.planned_working_days, event.accepted_by) == (3, 5, "olga")
    events = [e["event"] for e in accepted["timeline"]]
    assert events[events.index("grant_agreement.accepted"):] == [
        "grant_agreement.accepted", "preparation.updated", "preparation.updated", "exchange.started",
        "exchange.completed", "host_feedback.submitted", "report.submitted", "report.changes_requested",
        "report.submitted", "report.accepted"]


async def test_a_no_show_cancels_the_exchange_once(programme, infra, quiet):
    p = programme
    vt, ht, application, path, _ = await signed_exchange(p, infra, quiet)
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        assert (await p.post(f"{path}/no-show", {"reason": "x"}, vt)).status_code == 403  # the host reports it
        cancelled = await p.ok("POST", f"{path}/no-show", {"reason": "No news from the visitor"}, ht)
        assert cancelled["status"] == "cancelled"
        assert "never came" in cancelled["timeline"][-1]["summary"]
        again = await p.post(f"{path}/no-show", {"reason": "again"}, ht)
        assert again.status_code == 409
        published = await watcher.wait_for(lambda: watcher.of_type(ExchangeNoShow, application["application_id"]),
                                           30, "ExchangeNoShow")
    assert len(published) == 1 and published[0].event().reported_by == "hans"


async def test_a_missing_report_goes_overdue_blocks_the_balance_and_a_late_one_unblocks_it(
        programme_200_days_later, infra, quiet):
    p = programme_200_days_later
    vt, ht, application, path, start = await signed_exchange(p, infra, quiet, report_due_days=5)
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        await p.ok("POST", f"{path}/start", None, ht)
        done = await p.ok("POST", f"{path}/complete", None, ht)
        assert done["report_due_on"] == str(start + timedelta(days=4 + 5))
        overdue = await p.eventually(lambda: p.ok("GET", path), lambda d: d["report_overdue"], timeout=20)
        assert (overdue["status"], overdue["balance_blocked"]) == ("completed", True)
        assert "balance is blocked" in overdue["timeline"][-1]["summary"]
        late = await p.ok("POST", f"{path}/report", {"summary": "Sorry for the delay", "satisfaction": 3}, vt)
        assert late["report"]["late"] is True and late["balance_blocked"] is True  # submitted, not yet accepted
        accepted = await p.ok("POST", f"{path}/report/review", {"accept": True})
        assert (accepted["report_state"], accepted["balance_blocked"]) == ("accepted", False)
        published = await watcher.wait_for(lambda: watcher.of_type(ReportAccepted, application["application_id"]),
                                           30, "ReportAccepted")
        overdue_events = watcher.of_type(ReportOverdue, application["application_id"])
    assert len(overdue_events) == 1 and overdue_events[0].event().due_on == start + timedelta(days=9)
    assert published[0].event().actual_working_days == 5
    # the watcher keeps polling: an accepted report is never escalated again
    assert [e["event"] for e in (await p.ok("GET", path))["timeline"]].count("report.overdue") == 1


async def test_repeated_statements_are_bounded_and_the_timeline_reads_newest_first(programme, infra, quiet):
    """Issue 23, finding 6: a preparation or feedback sent again changes nothing; changed, it may
    change MAX_REVISIONS times (409 after, nothing stored); the timeline reads a page at a time,
    newest first, its newest entries reachable however long it grew."""
    p = programme
    vt, ht, application, path, start = await signed_exchange(p, infra, quiet)
    app_id = application["application_id"]

    async def stored() -> dict:
        return await p.db.applications.find_one({"_id": app_id})
    ticked = {"travel_booked": True}
    await p.ok("PUT", f"{path}/preparation", ticked, vt)
    first = await stored()
    for _ in range(30):  # the same checklist again: no event, no milestone, no processed id
        await p.ok("PUT", f"{path}/preparation", ticked, vt)
    assert (await stored())["revision"] == first["revision"]
    assert len((await stored())["processed"]) == len(first["processed"])
    limit = followup.MAX_REVISIONS["preparation.updated"]
    for i in range(limit - 1):
        await p.ok("PUT", f"{path}/preparation", {"travel_booked": True, "insurance": i % 2 == 0}, vt)
    before = await stored()
    refused = await p.client.put(f"{path}/preparation", json={"agenda_agreed": True}, headers=vt)
    assert refused.status_code == 409, refused.text
    assert (await stored())["revision"] == before["revision"]
    assert sum(m["event"] == "preparation.updated" for m in before["milestones"]) == limit

    await p.ok("POST", f"{path}/start", {}, ht)
    await p.ok("POST", f"{path}/complete", {"actual_end": str(start)}, ht)
    feedback = {"satisfaction": 4, "free_text": "Keen"}
    await p.ok("POST", f"{path}/host-feedback", feedback, ht)
    revision = (await stored())["revision"]
    await p.ok("POST", f"{path}/host-feedback", feedback, ht)
    assert (await stored())["revision"] == revision, "the same feedback again changes nothing"
    for i in range(followup.MAX_REVISIONS["host_feedback.submitted"] - 1):
        await p.ok("POST", f"{path}/host-feedback", {"satisfaction": 1 + i % 5, "free_text": f"take {i}"}, ht)
    assert (await p.post(f"{path}/host-feedback", {"satisfaction": 5}, ht)).status_code == 409

    # A timeline longer than one read: 2,100 old entries, then the newest.
    old = [{"_id": f"old-{i:05}", "event_id": f"old-{i:05}", "application_id": app_id, "event": "email.sent",
            "event_type": "eu.clusterxchange.email.sent.v1", "at": f"2000-01-01T00:00:{i % 60:02}.{i:06}Z",
            "source": "/clusterxchange/notifications", "actor": "notifications", "summary": "old"}
           for i in range(2100)]
    await p.db.timeline.insert_many(old)
    newest = {**old[0], "_id": "newest", "event_id": "newest", "event": "exchange.completed",
              "at": "2999-01-01T00:00:00.000000Z", "summary": "the newest"}
    await p.db.timeline.insert_one(newest)
    staff = p.token("programme_manager", partnership_ids=(application["partnership_id"],))
    whole = await p.ok("GET", path, headers=staff)
    assert "newest" in {e["event_id"] for e in whole["timeline"]}
    page = await p.ok("GET", f"{path}/timeline", params={"limit": 100}, headers=staff)
    assert page["items"][0]["event_id"] == "newest" and len(page["items"]) == 100
    seen = [e["event_id"] for e in page["items"]]
    while page["next"]:
        page = await p.ok("GET", f"{path}/timeline", params={"limit": 200, "before": page["next"]}, headers=staff)
        seen += [e["event_id"] for e in page["items"]]
    assert len(seen) == len(set(seen)) and set(seen) >= {e["_id"] for e in old}
    mine = await p.ok("GET", f"{path}/timeline", params={"limit": 200}, headers=vt)
    assert mine["items"][0]["event_id"] == "newest" and not {e["event"] for e in mine["items"]} & {"email.sent"}
    assert (await p.get(f"{path}/timeline", params={"limit": 201}, headers=staff)).status_code == 422
    bad = await p.get(f"{path}/timeline", params={"before": "bm90LWEtY3Vyc29y"}, headers=staff)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.before"

"""The follow-up events of issue 7 reach the right people in their language, once, and the
"report due" reminder follows the actual end of the exchange (real process, broker, DB, SMTP)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx
import pytest
from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ExchangeCompleted, ExchangeNoShow, ReportAccepted,
                                           ReportChangesRequested, ReportOverdue)
from cx_shared.events.grants import PaymentOrdered

pytestmark = pytest.mark.infra


def applications_event(event, app_id: str) -> Envelope:
    return Envelope.wrap(event, source="/clusterxchange/applications", subject=app_id)


def order(app_id: str, call_id: str, kind: str, amount: int) -> Envelope:
    return Envelope.wrap(PaymentOrdered(payment_id=f"{app_id}:{kind}", application_id=app_id, call_id=call_id,
                                        kind=kind, amount_cents=amount, payee_organisation_id="org",
                                        payee_legal_name="x", payee_country="FR"),
                         source="/clusterxchange/grants", subject=app_id)


async def test_follow_up_emails_and_the_report_reminder_from_the_actual_end(run_service, upstream, sink, token,
                                                                            helpers, stored):
    service = run_service("notifications")
    staff = token("programme_manager", partnership_ids=("p-1",))
    uid = helpers.uid()
    call_id, app, absent = f"call-{uid}", f"app-{uid}", f"absent-{uid}"
    contact, officer = f"office-{uid}@example.org", f"officer-{uid}@example.org"
    assert httpx.post(f"{service.url}/staff", headers=staff, json={
        "partnership_id": "p-1", "role": "grant_officer", "name": "Olga", "email": officer,
        "language": "en"}).status_code == 201
    visitor = helpers.participant("Optique Lyon", "FR", "Lyon", "fr", f"visitor-{uid}@example.org")
    host = helpers.participant("Laser Jena", "DE", "Jena", "de", f"host-{uid}@example.org")
    other = helpers.participant("Cluster Gent", "BE", "Gent", "en", f"other-{uid}@example.org")
    await upstream.publish(upstream.call(call_id, contact_email=contact))
    await stored("calls", {"_id": call_id}, "the call")  # its contact hears of the follow-up
    await upstream.publish(upstream.submitted(app, call_id, visitor, host, start_in_days=30, days=5),
                           upstream.submitted(absent, call_id, other, host, start_in_days=30, days=5),
                           upstream.host_accepted(app, call_id, host))
    planned_end = date.today() + timedelta(days=35)

    def reminders() -> dict:
        return {r["kind"]: r for r in httpx.get(f"{service.url}/applications/{app}/reminders", headers=staff).json()}

    def due_day(r: dict) -> date:
        return datetime.fromisoformat(r["due_at"].replace("Z", "+00:00")).date()

    await helpers.eventually(lambda: "report_due" in reminders(), 30, "report reminder scheduled")
    assert due_day(reminders()["report_due"]) == planned_end + timedelta(days=1)
    # the host confirms the departure two days early: the reminder moves with it
    actual_end = planned_end - timedelta(days=2)
    await upstream.publish(applications_event(ExchangeCompleted(
        application_id=app, call_id=call_id, confirmed_by="hans", actual_end=actual_end, actual_working_days=3,
        planned_working_days=5, report_due_on=actual_end + timedelta(days=30)), app))
    await helpers.eventually(lambda: due_day(reminders()["report_due"]) == actual_end + timedelta(days=1), 30,
                             "report reminder moved to the actual end")
    assert reminders()["report_due"]["status"] == "scheduled"

    overdue = applications_event(ReportOverdue(application_id=app, call_id=call_id, due_on=actual_end,
                                               detected_on=actual_end + timedelta(days=1)), app)
    await upstream.publish(
        applications_event(ReportChangesRequested(application_id=app, call_id=call_id, requested_by="pm",
                                                  reasons=["Name the projects"]), app),
        overdue, overdue,  # redelivered: still one email per recipient
        order(app, call_id, "prefinancing", 70_000), order(app, call_id, "balance", 12_345),
        applications_event(ExchangeNoShow(application_id=absent, call_id=call_id, reported_by="hans",
                                          reason="never came"), absent))
    await sink.wait(lambda mb: mb.to(visitor.contact.email, "Merci de revoir votre rapport")
                    and mb.to(visitor.contact.email, "Rapport en retard")
                    and mb.to(contact, f"Report overdue for exchange {app}")
                    and mb.to(officer, f"Report overdue for exchange {app}")
                    and mb.to(visitor.contact.email, "Solde de 123,45 €")
                    and mb.to(other.contact.email, f"The exchange {absent} did not take place")
                    and mb.to(host.contact.email, f"Der Austausch {absent} hat nicht stattgefunden")
                    and mb.to(contact, f"The exchange {absent} did not take place")
                    and mb.to(officer, f"The exchange {absent} did not take place"),
                    what="the follow-up emails")
    changes = sink.to(visitor.contact.email, "Merci de revoir votre rapport")[0]
    assert "Name the projects" in changes["text"]
    await upstream.publish(applications_event(ReportAccepted(
        application_id=app, call_id=call_id, accepted_by="pm", actual_start=actual_end - timedelta(days=2),
        actual_end=actual_end, actual_working_days=3, planned_working_days=5), app))
    await helpers.eventually(lambda: reminders()["report_due"]["status"] == "cancelled", 30,
                             "report reminder cancelled by the acceptance")
    mail = sink.read()
    assert len(mail.to(visitor.contact.email, "Rapport en retard")) == 1
    assert not mail.to(visitor.contact.email, "Solde de 700")  # the pre-financing order is not this email
    assert not mail.to(host.contact.email, "Bericht")  # the host is not told of the visitor's delay

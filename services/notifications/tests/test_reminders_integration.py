"""Reminders live in the database: scheduled before a crash, they fire after the restart once
their time has come (the service's clock is moved ahead instead of waiting days)."""

from __future__ import annotations

import httpx
import pytest
from cx_shared.testing.services import free_port

pytestmark = pytest.mark.infra
DAY = 24 * 3600


async def test_reminders_fire_after_a_restart_and_respect_unsubscribe(run_service, upstream, sink, token, helpers):
    port = free_port()
    service = run_service("notifications", HTTP_PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                          REMINDER_POLL_SECONDS="0.2")
    staff = token("grant_officer", partnership_ids=("p-1",))  # its reminders and their emails are p-1's
    uid = helpers.uid()
    call_id = f"call-{uid}"
    host = helpers.participant("Hub Tallinn", "EE", "Tallinn", "en", f"host-{uid}@example.org")
    # a: unsubscribed from optional messages; c: not, and accepts its agreement; b: nearly over.
    a = helpers.participant("Cluster Gent", "BE", "Gent", "en", f"a-{uid}@example.org")
    c = helpers.participant("Cluster Graz", "AT", "Graz", "de", f"c-{uid}@example.org")
    b = helpers.participant("Cluster Lille", "FR", "Lille", "fr", f"b-{uid}@example.org")
    apps = {"a": f"app-a-{uid}", "c": f"app-c-{uid}", "b": f"app-b-{uid}"}
    await upstream.publish(
        upstream.submitted(apps["a"], call_id, a, host, start_in_days=40),
        upstream.submitted(apps["c"], call_id, c, host, start_in_days=40),
        upstream.submitted(apps["b"], call_id, b, host, start_in_days=10, days=2),
        *[upstream.host_accepted(app, call_id, host) for app in apps.values()],
        upstream.agreement_issued(apps["a"], call_id, a), upstream.agreement_issued(apps["c"], call_id, c))

    # a unsubscribes through the link of an optional email it received.
    received = (await sink.wait_for(a.contact.email, subject="was received"))[0]
    link = received["headers"]["List-Unsubscribe"].strip().strip("<>")  # as a mail client unfolds it
    # an opaque token in the path: no address, no query string (access logs keep none)
    assert link.startswith(f"{service.url}/unsubscribe/") and "?" not in link
    assert a.contact.email.split("@")[0] not in link
    page = httpx.get(link)  # a mail scanner following the link changes nothing...
    assert page.status_code == 200 and 'method="post"' in page.text
    assert httpx.post(link).status_code == 200  # ...the button (or one-click POST) does
    guessed = link[:-1] + ("A" if link[-1] != "A" else "B")  # any other token is unknown
    assert httpx.post(guessed).status_code == 404

    def scheduled(app):
        return [r["kind"] for r in httpx.get(f"{service.url}/applications/{app}/reminders", headers=staff).json()
                if r["status"] == "scheduled"]

    await helpers.eventually(lambda: len(scheduled(apps["a"])) == 3 and len(scheduled(apps["c"])) == 3
                             and len(scheduled(apps["b"])) == 2, 30, "reminders scheduled")
    await upstream.publish(upstream.agreement_accepted(apps["c"], call_id))
    await helpers.eventually(lambda: scheduled(apps["c"]) == ["exchange_starting_soon", "report_due"], 30,
                             "c's agreement reminder cancelled")
    await sink.wait_for(a.contact.email, subject="grant agreement for exchange")  # the events' own emails
    service.kill()
    before = sink.read()
    assert not [m for m in before.to(a.contact.email) + before.to(b.contact.email) + before.to(c.contact.email)
                if "eminder" in m["subject"] or "Erinnerung" in m["subject"] or "rapport" in m["subject"]]

    service.start(CLOCK_OFFSET_SECONDS=str(35 * DAY))  # 35 days later
    await sink.wait(lambda mb: mb.to(a.contact.email, "Reminder: please accept your grant agreement")
                    and mb.to(c.contact.email, "Ihr Austausch mit Hub Tallinn beginnt am")
                    and mb.to(b.contact.email, "Votre rapport d'échange est attendu"), what="the reminders")

    def reminders(app):
        return {r["kind"]: r["status"] for r in
                httpx.get(f"{service.url}/applications/{app}/reminders", headers=staff).json()}

    await helpers.eventually(lambda: reminders(apps["a"])["exchange_starting_soon"] == "fired", 20, "a fired")
    assert reminders(apps["a"]) == {"agreement_not_accepted": "fired", "exchange_starting_soon": "fired",
                                    "report_due": "scheduled"}  # its report is due on day 46, not yet
    assert reminders(apps["b"]) == {"exchange_starting_soon": "skipped", "report_due": "fired"}  # b left on day 10
    # a unsubscribed: its optional departure reminder is recorded as suppressed, never sent.
    log = httpx.get(f"{service.url}/notifications", params={"application_id": apps["a"]}, headers=staff).json()
    assert [n["status"] for n in log if n["template"] == "reminder_exchange_starting_soon"] == ["suppressed"]
    mail = sink.read()
    assert not mail.to(a.contact.email, "starts on")
    assert len(mail.to(a.contact.email, "Reminder")) == 1
    # c accepted its agreement before the restart: that reminder was cancelled, never sent.
    assert reminders(apps["c"])["agreement_not_accepted"] == "cancelled"
    assert not mail.to(c.contact.email, "Erinnerung")

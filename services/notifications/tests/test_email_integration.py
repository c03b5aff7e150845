"""Email over the real broker, the real database and the real SMTP sink."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from cx_shared.events.applications import ApplicationSubmittedV2, OrganisationUpdated
from cx_shared.envelope import Envelope
from cx_shared.events.common import Party
from cx_shared.events.notifications import EmailFailed, EmailSent
from cx_shared.testing.kafka import TopicWatcher, topic_names, wait_consumed
from cx_shared.testing.services import free_port
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, consumer_group
from notifications.storage import ENROLMENT
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.infra


def distinct(envelopes):
    """One per CloudEvents id: the watcher's consumer re-reads from the start after a rebalance
    (the test blocks its loop while a service restarts), and consumers dedupe by id anyway."""
    return list({e.id: e for e in envelopes}.values())


async def test_each_recipient_hears_once_in_their_language(run_service, upstream, sink, infra, namespace,
                                                            helpers, stored):
    run_service("notifications")
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    visitor = helpers.participant("Optique Lyon", "FR", "Lyon", "fr", f"visitor-{uid}@example.org")
    host = helpers.participant("Laser Jena GmbH", "DE", "Jena", "de", f"host-{uid}@example.org")
    contact = f"contact-{uid}@example.org"
    approved = upstream.approved(app_id, call_id)
    committed = upstream.committed(app_id, call_id, total=123_456)
    async with TopicWatcher(infra.kafka, topic_names(namespace, NOTIFICATIONS)) as watcher:
        await upstream.publish(upstream.call(call_id, contact_email=contact), upstream.enrolled(visitor, "visitor"),
                               upstream.enrolled(host, "host"))
        # The submission's recipients come from the call and the enrolments (other keys, other
        # partitions): as applications publishes them, they are in before anybody applies.
        await stored("calls", {"_id": call_id}, "the call")
        await stored("organisations", {"_id": {"$in": [visitor.organisation_id, host.organisation_id]}},
                     "the enrolments", count=2)
        await upstream.publish(upstream.submitted(app_id, call_id, visitor, host), approved, committed)
        await upstream.publish(approved, committed)  # redelivered: must not send again

        v, h = visitor.contact.email, host.contact.email
        expected = ((v, "est approuvée"), (v, "Subvention de"), (v, "a été reçue"), (h, "Bitte bestätigen"),
                    (h, "möchte Sie besuchen"), (contact, "New application"))
        mail = await sink.wait(lambda mb: all(mb.to(a, s) for a, s in expected), what="the six emails")
        decision = mail.to(v, "est approuvée")[0]
        assert app_id in decision["subject"] and "Laser Jena GmbH" in decision["text"]
        assert decision["headers"]["Content-Language"] == "fr" and "<p>" in decision["html"]
        money = mail.to(v, "Subvention de")[0]
        assert "1\u202f234,56 €" in money["text"]
        assert "List-Unsubscribe" not in money["headers"]  # money is mandatory: no opting out
        assert "List-Unsubscribe" in mail.to(v, "a été reçue")[0]["headers"]  # an optional acknowledgement
        assert "Optique Lyon" in mail.to(h, "Bitte bestätigen")[0]["text"]
        assert "Photonics call 2026" in mail.to(contact, "New application")[0]["subject"]

        # Every (event, recipient) once: 3 to the visitor, 2 to the host, 1 to the contact.
        await watcher.wait_for(lambda: len(distinct(watcher.of_type(EmailSent))) >= 6, 30, "six EmailSent")
        # at rest: the redelivered events handled, and what they caused (if anything) published
        await wait_consumed(infra.kafka, [consumer_group("notifications", namespace)],
                            topic_names(namespace, APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS), watcher=watcher)
        await asyncio.sleep(1.0)  # and the mailer's next pass: give a wrongly re-planned duplicate the time to show up
        mail = sink.read()
        assert (len(mail.to(v)), len(mail.to(h)), len(mail.to(contact))) == (3, 2, 1)
        sent = [e.data for e in distinct(watcher.of_type(EmailSent, app_id))]
        assert len(sent) == 6 and len({s["notification_id"] for s in sent}) == 6
        by_cause = {(s["cause_event_id"], s["recipient_role"]) for s in sent}
        assert (approved.id, "visitor") in by_cause and (approved.id, "host") in by_cause
        assert (committed.id, "visitor") in by_cause
        assert {s["language"] for s in sent if s["recipient_role"] == "visitor"} == {"fr"}


async def test_one_email_after_a_crash_between_send_and_record(run_service, upstream, sink, infra, namespace,
                                                              helpers, token):
    """The process dies after the SMTP server accepted the email and before the record: after the
    restart the lease expires and the email is re-sent with the SAME Message-ID, recorded once."""
    service = run_service("notifications", MAIL_PAUSE_AFTER_SEND_SECONDS="60", MAIL_LEASE_SECONDS="2",
                          MAIL_CONCURRENCY="1")
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    visitor = helpers.participant("Agro Bologna", "IT", "Bologna", "en", f"visitor-{uid}@example.org")
    host = helpers.participant("Ferme Nantes", "FR", "Nantes", "fr", f"host-{uid}@example.org")
    async with TopicWatcher(infra.kafka, topic_names(namespace, NOTIFICATIONS)) as watcher:
        await upstream.publish(upstream.submitted(app_id, call_id, visitor, host))
        first = await sink.wait(lambda mb: mb.to(visitor.contact.email) or mb.to(host.contact.email),
                                what="the first email")
        service.kill()  # SIGKILL while the mailer sleeps between the 250 and the record
        interrupted = (first.to(visitor.contact.email) + first.to(host.contact.email))[0]["to"]
        service.start(MAIL_PAUSE_AFTER_SEND_SECONDS="0")

        await watcher.wait_for(lambda: len(distinct(watcher.of_type(EmailSent, app_id))) >= 2, 40, "both EmailSent")
        mail = sink.read()
        copies = mail.to(interrupted)
        assert len(copies) == 2, "the kill fell in the window: the relay got the email twice"
        assert len({m["message_id"] for m in copies}) == 1, "...as the same email (one Message-ID)"
        other = visitor.contact.email if host.contact.email in interrupted else host.contact.email
        assert len(mail.to(other)) == 1
        sent = distinct(watcher.of_type(EmailSent, app_id))
        assert len(sent) == 2 and len({e.data["notification_id"] for e in sent}) == 2
        log = httpx.get(f"{service.url}/notifications", params={"application_id": app_id},
                        headers=token("programme_manager", programme=True)).json()
        assert sorted(n["status"] for n in log) == ["sent", "sent"]
        # Both were claimed by the killed process as it queued them, and again after the restart
        # (attempts counts the claims: a sender that died holding an email counts).
        assert sorted(n["attempts"] for n in log) == [2, 2]


async def test_smtp_failure_retries_then_ends_failed(run_service, upstream, infra, namespace, helpers, token):
    service = run_service("notifications", SMTP_PORT=str(free_port()), MAIL_MAX_ATTEMPTS="3",
                          MAIL_BACKOFF_SECONDS="0.2")
    uid = helpers.uid()
    app_id = f"app-{uid}"
    visitor = helpers.participant("Textil Porto", "PT", "Porto", "pt")
    host = helpers.participant("Tessile Prato", "IT", "Prato", "it")
    async with TopicWatcher(infra.kafka, topic_names(namespace, NOTIFICATIONS)) as watcher:
        await upstream.publish(upstream.submitted(app_id, f"call-{uid}", visitor, host))
        await watcher.wait_for(lambda: len(distinct(watcher.of_type(EmailFailed, app_id))) == 2, 40, "two EmailFailed")
    failed = httpx.get(f"{service.url}/notifications", params={"application_id": app_id, "status": "failed"},
                       headers=token("grant_officer", partnership_ids=("p-1",))).json()
    assert len(failed) == 2
    assert all(n["attempts"] == 3 and n["last_error"] for n in failed)
    assert {n["recipient"]["language"] for n in failed} == {"en"}  # pt and it fall back to English
    assert not watcher.of_type(EmailSent, app_id)


async def test_staff_hear_of_their_work_and_a_decision_that_overtook_its_submission_still_goes(
        run_service, upstream, sink, token, helpers, stored):
    service = run_service("notifications")
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    manager = token("programme_manager", partnership_ids=("p-1",))
    assessor, officer = f"assessor-{uid}@example.org", f"officer-{uid}@example.org"
    for role, email, lang in (("assessor", assessor, "de"), ("grant_officer", officer, "fr")):
        added = httpx.post(f"{service.url}/staff", headers=manager, json={
            "partnership_id": "p-1", "role": role, "name": role, "email": email, "language": lang})
        assert added.status_code == 201, added.text
    assert httpx.post(f"{service.url}/staff", headers=token("programme_manager", partnership_ids=("p-9",)), json={
        "partnership_id": "p-1", "role": "assessor", "name": "x", "email": "x@example.org"}).status_code == 403
    visitor = helpers.participant("Digital Hub Riga", "LV", "Riga", "en", f"visitor-{uid}@example.org")
    host = helpers.participant("Fab Lab Bilbao", "ES", "Bilbao", "es", f"host-{uid}@example.org")
    updated = visitor.model_copy(update={"contact": visitor.contact.model_copy(update={"language": "de"})})
    relanguaged = upstream.enrolled(updated, "visitor")
    relanguaged = relanguaged.model_copy(update={"type": OrganisationUpdated.ce_type(),
                                                 "data": {**relanguaged.data, "revision": 2}})
    # The decision (assessment's topic) arrives before the submission (applications' topic).
    await upstream.publish(upstream.call(call_id, mode="panel"), upstream.approved(app_id, call_id),
                           upstream.enrolled(visitor, "visitor"), relanguaged)
    await stored("parked", {"application_id": app_id}, "the parked decision")
    # The update sits on another partition than the submission below: let it land first, or
    # the replayed decision is rightly written in the language known then (English).
    await stored("organisations", {"_id": visitor.organisation_id, "revision": 2}, "the visitor's new language")
    await upstream.publish(upstream.submitted(app_id, call_id, visitor, host), upstream.queued(app_id, call_id),
                           upstream.committed(app_id, call_id))

    await sink.wait(lambda mb: mb.to(visitor.contact.email, f"Ihre Bewerbung {app_id} ist genehmigt")  # updated: de
                    and mb.to(assessor, f"Neue Bewerbung {app_id}")  # new work in the panel's queue
                    and mb.to(officer, "Subvention de")
                    and mb.to(host.contact.email, "Please confirm"),  # es falls back to English
                    what="the decision, the assessor's and the grant officer's emails")


async def test_a_submission_before_its_parties_enrolments_mails_nobody_until_they_arrive(
        run_service, upstream, sink, infra, namespace, helpers, stored):
    """A v2 submission carries no contact person: consumed before the parties' enrolments it is
    parked under each missing enrolment in turn, sends nothing, and mails the enrolled contacts
    once both enrolments are in."""
    run_service("notifications")
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    visitor = helpers.participant("Optique Lyon", "FR", "Lyon", "fr", f"visitor-{uid}@example.org")
    host = helpers.participant("Laser Jena GmbH", "DE", "Jena", "de", f"host-{uid}@example.org")
    submitted = upstream.submitted(app_id, call_id, visitor, host)
    minimised = ApplicationSubmittedV2(**{**submitted.data, "visitor": Party(**visitor.model_dump()),
                                          "host": Party(**host.model_dump())})
    assert "contact" not in json.dumps(minimised.model_dump(mode="json"))
    await upstream.publish(upstream.call(call_id))
    await stored("calls", {"_id": call_id}, "the call")
    await upstream.publish(Envelope.wrap(minimised, source="/clusterxchange/applications", subject=app_id))
    await stored("parked", {"application_id": ENROLMENT + visitor.organisation_id}, "parked for the visitor")
    await upstream.publish(upstream.enrolled(visitor, "visitor"))
    await stored("parked", {"application_id": ENROLMENT + host.organisation_id}, "parked again for the host")

    client = AsyncMongoClient(infra.mongodb_url)
    db = client[f"{namespace.replace('.', '')}_notifications"]
    await asyncio.sleep(1.0)  # the mailer's next pass: a wrongly planned email would show up
    assert not sink.to(visitor.contact.email) and not sink.to(host.contact.email)
    assert await db["notifications"].count_documents({"application_id": app_id}) == 0, \
        "nothing planned while the host's enrolment is missing"

    await upstream.publish(upstream.enrolled(host, "host"))
    mail = await sink.wait(lambda mb: mb.to(visitor.contact.email, "a été reçue") and mb.to(host.contact.email,
                                                                                             "möchte Sie besuchen"),
                           what="the submission's emails to the enrolled contacts")
    assert app_id in mail.to(visitor.contact.email, "a été reçue")[0]["subject"]
    parked = [ENROLMENT + visitor.organisation_id, ENROLMENT + host.organisation_id, app_id]

    async def unparked() -> bool:
        return await db["parked"].count_documents({"application_id": {"$in": parked}}) == 0
    await helpers.eventually(unparked, 20, "nothing parked any more")
    await client.close()

"""The notification rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifications import domain as d

VISITOR = d.Recipient(d.VISITOR, "Vera@Example.org", "Vera", "fr")
HOST = d.Recipient(d.HOST, "hugo@example.org", "Hugo", "de")
CONTACT = d.Recipient(d.CONTACT, "contact@example.org", "Photonics call")
ASSESSORS = (d.Recipient(d.ASSESSOR, "ada@example.org", "Ada"), d.Recipient(d.ASSESSOR, "bob@example.org", "Bob"))
OFFICERS = (d.Recipient(d.GRANT_OFFICER, "gina@example.org", "Gina", "it"),)
EVERYONE = d.Audience(VISITOR, HOST, CONTACT, ASSESSORS, OFFICERS)


def who(planned):
    return sorted((p.recipient.role, p.template) for p in planned)


@pytest.mark.parametrize(("event", "expected"), [
    ("application.approved", [("host", "host_confirmation_requested"), ("visitor", "application_approved")]),
    ("application.rejected", [("visitor", "application_rejected")]),
    ("host.declined", [("partnership_contact", "host_declined"), ("visitor", "host_declined")]),
    ("grant.committed", [("grant_officer", "grant_committed"), ("visitor", "grant_committed")]),
    ("grant.refused", [("grant_officer", "grant_refused"), ("partnership_contact", "grant_refused"),
                       ("visitor", "grant_refused")]),
    ("application.withdrawn", [("host", "application_withdrawn"), ("partnership_contact", "application_withdrawn")]),
    ("application.queued", [("assessor", "new_application"), ("assessor", "new_application")]),
    ("application.cancelled", [("host", "application_cancelled"), ("partnership_contact", "application_cancelled"),
                               ("visitor", "application_cancelled")]),
    ("grant_agreement.issued", [("visitor", "agreement_issued")]),
    ("payment.settled", [("visitor", "payment_settled")]),
    ("commitment.reduced", [("grant_officer", "commitment_reduced"), ("visitor", "commitment_reduced")]),
    ("eligibility.checked", []),
    ("payment.ordered", []),
])
def test_each_event_reaches_the_people_it_concerns(event, expected):
    assert who(d.plan_emails("evt-1", event, EVERYONE)) == expected


def test_assessors_hear_of_new_work_in_their_queue_not_of_every_submission():
    submitted = who(d.plan_emails("evt-1", "application.submitted", EVERYONE))
    assert ("assessor", "new_application") not in submitted
    assert ("partnership_contact", "new_application") in submitted
    queued = d.plan_emails("evt-2", "application.queued", EVERYONE)
    assert sorted(p.recipient.email for p in queued) == ["ada@example.org", "bob@example.org"]


def test_one_email_per_address_and_event_whatever_the_roles():
    same_person = d.Audience(VISITOR, HOST, d.Recipient(d.CONTACT, "vera@example.ORG", "Vera as contact"))
    planned = d.plan_emails("evt-1", "host.declined", same_person)
    assert [p.recipient.role for p in planned] == ["visitor"]


def test_ids_are_stable_per_event_and_address_so_a_redelivery_plans_the_same_emails():
    first = d.plan_emails("evt-1", "grant.committed", EVERYONE)
    again = d.plan_emails("evt-1", "grant.committed", EVERYONE)
    other = d.plan_emails("evt-2", "grant.committed", EVERYONE)
    assert [p.notification_id for p in first] == [p.notification_id for p in again]
    assert not {p.notification_id for p in first} & {p.notification_id for p in other}
    assert d.notification_id("e", "A@x.org ") == d.notification_id("e", "a@x.org")


def test_message_id_is_fixed_per_notification_and_uses_the_sender_domain():
    assert d.message_id("abc", "ClusterXchange <no-reply@cx.example.eu>") == "<abc@cx.example.eu>"


def test_unsubscribed_addresses_lose_optional_emails_but_never_decisions_or_money():
    out = frozenset({"vera@example.org", "hugo@example.org"})
    received = d.plan_emails("evt-1", "application.submitted", EVERYONE, out)
    assert all(p.suppressed for p in received if p.recipient.role in ("visitor", "host"))
    assert not [p for p in received if p.recipient.role == "partnership_contact" and p.suppressed]
    for event in ("application.approved", "application.rejected", "grant.committed", "commitment.released"):
        assert not [p for p in d.plan_emails("evt-1", event, EVERYONE, out) if p.suppressed]


def test_language_comes_from_enrolment_and_falls_back_to_english():
    assert [d.language(x) for x in ("fr", "de-AT", "DE", "pt", None, "")] == ["fr", "de", "de", "en", "en", "en"]


def test_backoff_doubles_and_is_capped():
    assert [d.backoff(n, 5, 60) for n in range(1, 6)] == [5, 10, 20, 40, 60]


def test_reminders_follow_the_commitment_and_the_host_acceptance():
    at = datetime(2026, 3, 2, 10, tzinfo=UTC)
    dates = d.ExchangeDates(d.morning_of(datetime(2026, 5, 4).date()), d.morning_of(datetime(2026, 5, 8).date()))
    policy = d.ReminderPolicy(agreement_days=7, starting_soon_days=5, report_due_days=2)
    (agreement,) = d.reminders_for("grant_agreement.issued", "app-1", at, dates, policy)
    assert (agreement.kind, agreement.due_at, agreement.reminder_id) == (
        d.AGREEMENT, at + timedelta(days=7), "agreement_not_accepted:app-1")
    soon, report = d.reminders_for("host.accepted", "app-1", at, dates, policy)
    assert soon.due_at == datetime(2026, 4, 29, 8, tzinfo=UTC)
    assert report.due_at == datetime(2026, 5, 10, 8, tzinfo=UTC)
    assert d.reminders_for("application.approved", "app-1", at, dates, policy) == []
    assert d.reminders_for("grant.committed", "app-1", at, dates, policy) == []
    assert set(d.CANCELLED_BY["application.withdrawn"]) == {d.AGREEMENT, d.STARTING_SOON, d.REPORT_DUE}
    assert d.CANCELLED_BY["grant_agreement.accepted"] == (d.AGREEMENT,)
    assert d.CANCELLED_BY["report.submitted"] == (d.REPORT_DUE,)
    assert d.CANCELLED_BY["exchange.started"] == (d.STARTING_SOON,)


def test_a_departure_reminder_after_the_departure_is_not_sent():
    dates = d.ExchangeDates(datetime(2026, 5, 4, 8, tzinfo=UTC), datetime(2026, 5, 8, 8, tzinfo=UTC))
    assert d.reminder_still_relevant(d.STARTING_SOON, datetime(2026, 5, 1, tzinfo=UTC), dates)
    assert not d.reminder_still_relevant(d.STARTING_SOON, datetime(2026, 5, 5, tzinfo=UTC), dates)
    assert d.reminder_still_relevant(d.REPORT_DUE, datetime(2026, 6, 1, tzinfo=UTC), dates)


def test_reminders_go_to_the_visitor_and_only_the_optional_one_can_be_unsubscribed():
    out = frozenset({"vera@example.org"})
    (soon,) = d.plan_reminder("reminder:x", d.STARTING_SOON, EVERYONE, out)
    (report,) = d.plan_reminder("reminder:y", d.REPORT_DUE, EVERYONE, out)
    assert soon.recipient.role == report.recipient.role == "visitor"
    assert soon.suppressed and not report.suppressed


def test_scoped_subscribers_get_event_data_without_contact_names_emails_and_phones():
    person = {"name": "Vera", "email": "vera@example.org", "phone": "+33 1", "language": "fr"}
    data = {"application_id": "a-1", "visitor": {"legal_name": "Optique Lyon", "contact": person},
            "hosts": [{"legal_name": "Laser Jena", "contact": person}], "contact_email": "call@example.org",
            "total_cents": 10}
    shown = d.without_contacts(data)
    assert shown == {"application_id": "a-1", "visitor": {"legal_name": "Optique Lyon"},
                     "hosts": [{"legal_name": "Laser Jena"}], "total_cents": 10}
    assert "vera" not in str(shown) and data["visitor"]["contact"] == person  # a copy; the event is untouched


def test_scoped_subscribers_get_a_report_without_its_texts_but_with_its_outcome_kinds():
    report = {"application_id": "a-1", "organisation_id": "org-v", "submitted_by": "vera", "satisfaction": 5,
              "summary": "Vera met Hans", "learnt": "optics", "free_text": "call +33 1",
              "outcomes": ["new_collaboration", "an MoU with Hans"], "outcome_kinds": ["new_collaboration"]}
    assert d.without_contacts(report) == {"application_id": "a-1", "organisation_id": "org-v",
                                          "submitted_by": "vera", "satisfaction": 5,
                                          "outcomes": ["new_collaboration"], "outcome_kinds": ["new_collaboration"]}
    feedback = {"application_id": "a-1", "organisation_id": "org-h", "satisfaction": 4, "free_text": "Vera was late"}
    assert d.without_contacts(feedback) == {"application_id": "a-1", "organisation_id": "org-h", "satisfaction": 4}


def test_staff_manage_only_subscriptions_wholly_within_their_partnerships():
    scoped = {"partnership_ids": ["p-a", "p-b"], "programme_wide": False}
    assert d.within(None, scoped) and d.within(None, {"programme_wide": True, "partnership_ids": []})
    assert d.within(["p-a", "p-b", "p-c"], scoped)
    assert not d.within(["p-a"], scoped)  # it also hears of p-b
    assert not d.within(["p-a"], {"programme_wide": True, "partnership_ids": []})
    assert not d.within(["p-a"], {})  # no declared scope: nobody's but programme-wide staff's


def test_a_rotated_secret_signs_beside_the_new_one_until_its_grace_period_ends():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    sub = {"secret": "new", "previous_secret": "old", "previous_secret_until": now + timedelta(hours=1)}
    assert d.signing_secrets(sub, now) == ["new", "old"]
    assert d.signing_secrets(sub, now + timedelta(hours=1)) == ["new"]
    assert d.signing_secrets({"secret": "only"}, now) == ["only"]


def test_euros_are_written_the_way_each_language_writes_them():
    assert d.format_euros(123_456, "en") == "€1,234.56"
    assert d.format_euros(123_456, "fr") == "1\u202f234,56 €"
    assert d.format_euros(123_456, "de") == "1.234,56 €"
    assert d.format_euros(5, "en") == "€0.05"


def test_subscriptions_name_event_types_fully_shortly_or_all():
    ce = "eu.clusterxchange.grant.committed.v1"
    assert d.wants(["grant.committed"], ce) and d.wants([ce], ce) and d.wants(["*"], ce)
    assert not d.wants(["grant.refused", "eu.clusterxchange.grant.committed.v2"], ce)


def test_an_endpoint_is_disabled_only_after_failing_long_enough():
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert d.should_disable(now - timedelta(days=3), now, 3 * 24 * 3600)
    assert not d.should_disable(now - timedelta(days=1), now, 3 * 24 * 3600)
    assert not d.should_disable(None, now, 0)


def test_the_webhook_body_is_a_structured_cloudevent():
    envelope = {"id": "e1", "source": "/clusterxchange/grants", "type": "eu.clusterxchange.grant.committed.v1",
                "subject": "app-1", "time": "2026-01-01T00:00:00Z", "specversion": "1.0",
                "datacontenttype": "application/json", "correlationid": "c1", "causationid": None,
                "topic": "cx.grants.v1", "data": {"total_cents": 1}}
    event = d.structured_cloudevent(envelope)
    assert event == {k: v for k, v in envelope.items() if k not in ("topic", "causationid")}


def test_email_context_carries_the_parties_and_the_event_fields():
    application = {"_id": "app-1", "visitor": {"legal_name": "V", "city": "Lyon", "country": "FR"},
                   "host": {"legal_name": "H", "city": "Jena", "country": "DE"},
                   "planned_start": "2026-05-04", "planned_end": "2026-05-08"}
    ctx = d.email_context(application, {"title": "Call"}, {"reasons": ["too short"], "total_cents": 10})
    assert (ctx["visitor_name"], ctx["host_city"], ctx["call_title"], ctx["reasons"], ctx["total_cents"]) == (
        "V", "Jena", "Call", ["too short"], 10)
    assert d.email_context(application, None, {})["reasons"] == []


def test_only_events_about_people_are_looked_at_for_emails():
    assert d.concerns_people("grant.committed") and d.concerns_people("host.accepted")
    assert d.concerns_people("grant_agreement.accepted") and d.concerns_people("report.submitted")
    assert d.concerns_people("application.withdrawn")
    assert not d.concerns_people("eligibility.checked") and not d.concerns_people("email.sent")


# --- issue 7: follow-up routing and the report reminder from the actual end -------------------

def test_follow_up_events_reach_the_people_concerned():
    from notifications.domain import (ROUTES, Audience, Recipient, plan_emails, rescheduled_reminders, routing_key,
                                      ReminderPolicy, CANCELLED_BY, REPORT_DUE, ALL_REMINDERS)
    people = Audience(visitor=Recipient("visitor", "v@x.eu", "V", "fr"), host=Recipient("host", "h@x.eu", "H", "de"),
                      partnership_contact=Recipient("partnership_contact", "c@x.eu", "C"),
                      grant_officers=(Recipient("grant_officer", "o@x.eu", "O"),))
    no_show = plan_emails("e1", "exchange.no_show", people)
    assert sorted(p.recipient.email for p in no_show) == ["c@x.eu", "h@x.eu", "o@x.eu", "v@x.eu"]
    assert [p.recipient.email for p in plan_emails("e2", "report.changes_requested", people)] == ["v@x.eu"]
    assert sorted(p.recipient.email for p in plan_emails("e3", "report.overdue", people)) == [
        "c@x.eu", "o@x.eu", "v@x.eu"]
    assert routing_key("payment.ordered", {"kind": "balance"}) in ROUTES
    assert routing_key("payment.ordered", {"kind": "prefinancing"}) not in ROUTES
    assert routing_key("report.overdue", {}) == "report.overdue"
    assert CANCELLED_BY["exchange.no_show"] == ALL_REMINDERS and CANCELLED_BY["report.accepted"] == (REPORT_DUE,)
    moved = rescheduled_reminders("exchange.completed", "app-1", {"actual_end": "2027-03-24"}, ReminderPolicy())
    assert [(r.kind, r.due_at.isoformat()) for r in moved] == [(REPORT_DUE, "2027-03-25T08:00:00+00:00")]
    assert rescheduled_reminders("exchange.completed", "app-1", {}, ReminderPolicy()) == []


def test_an_export_holds_the_subjects_own_mails_and_says_to_whom_its_data_went():
    """Issue 23, finding 2: the mail log of the subject's exchanges holds other people's names and
    addresses; the export keeps the mails sent to the subject's own address, and of a webhook
    delivery or a parked event only to whom and when, not the event."""
    from notifications.storage import exported
    mail = {"_id": "n-1", "recipient": {"email": "Ana@V.example", "name": "Ana"}, "context": {"visitor": "V"}}
    staff_mail = {"_id": "n-2", "recipient": {"email": "officer@ptn.example", "name": "Otto Officer"}}
    delivery = {"_id": "d-1", "subscription_id": "sub-1", "event_type": "eu.clusterxchange.report.submitted.v2",
                "status": "delivered", "body": '{"data":{"free_text":"Hans said"}}'}
    parked = {"_id": "e-1", "parked_at": 1, "envelope": {"data": {"host": {"contact": {"name": "Hans"}}}}}
    application = {"_id": "app-1", "visitor": {"organisation_id": "org-v", "contact": {"name": "Ana"}},
                   "host": {"organisation_id": "org-h", "contact": {"name": "Hans", "email": "h@h.example"}}}
    found = [{"collection": c, "document": d} for c, d in (("notifications", mail), ("notifications", staff_mail),
                                                           ("webhook_deliveries", delivery), ("parked", parked),
                                                           ("applications", application))]
    shown = exported("org-v", {"ana@v.example"}, found)
    text = str(shown)
    assert "Otto" not in text and "officer@" not in text and "Hans" not in text and "h@h.example" not in text
    assert [d["document"]["_id"] for d in shown] == ["n-1", "d-1", "e-1", "app-1"]
    assert shown[1]["document"] == {k: delivery[k] for k in ("_id", "subscription_id", "event_type", "status")}
    assert "Ana" in text

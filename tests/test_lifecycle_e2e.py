"""One exchange's lifecycle across the four running services, over the real broker,
the real database and the real SMTP sink (the foundation issue's end-to-end proof)."""

from __future__ import annotations

import httpx
import pytest

from cx_shared import catalog
from cx_shared.events.applications import ApplicationSubmitted, ApplicationSubmittedV2
from cx_shared.events.assessment import ApplicationApproved, EligibilityChecked, HostAccepted
from cx_shared.events.grants import GrantCommitted
from cx_shared.events.notifications import EmailSent
from cx_shared.testing.catalog import off_catalog
from cx_shared.testing.kafka import TopicWatcher, publish_raw, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, ASSESSMENT, DEAD_LETTERS, GRANTS, NOTIFICATIONS, consumer_group, qualified
from tests.journey import Journey, mail_to, wait_mail_settled

pytestmark = pytest.mark.infra
ALL = (APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS)
SERVICES = ("applications", "assessment", "grants", "notifications")


@pytest.fixture
def system(run_service):
    return {name: run_service(name) for name in SERVICES}


async def run_to_committed_grant(journey: Journey, system: dict) -> str:
    journey.open_call(budget_cents=1_000_000)
    journey.enrol_pair()
    application = journey.submit()
    app_id = application["application_id"]
    assert application["status"] == "submitted"
    await journey.wait_status(app_id, "approved")
    decision = httpx.post(f"{system['assessment'].url}/applications/{app_id}/host-decision",
                          json={"accept": True}, headers=journey.host_headers, timeout=20)
    assert decision.status_code in (200, 201, 202), decision.text
    await journey.wait_status(app_id, "grant_committed")
    return app_id


async def test_application_reaches_a_committed_grant_and_an_email(system, infra, namespace, token):
    journey = Journey(system["applications"].url, token)
    async with TopicWatcher(infra.kafka, topic_names(namespace, *ALL)) as watch:
        app_id = await run_to_committed_grant(journey, system)

        submitted = (await watch.wait_for(lambda: watch.of_type(ApplicationSubmittedV2, app_id), what="submission"))[0]
        checked_envelope = (await watch.wait_for(lambda: watch.of_type(EligibilityChecked, app_id), what="check"))[0]
        checked = checked_envelope.event()
        assert checked.eligible and all(outcome.passed for outcome in checked.outcomes)
        assert checked_envelope.causationid == submitted.id
        assert checked_envelope.correlationid == submitted.correlationid
        committed = (await watch.wait_for(lambda: watch.of_type(GrantCommitted, app_id), what="GrantCommitted"))[0].event()
        assert committed.total_cents > 0 and committed.total_cents == committed.travel_cents + committed.subsistence_cents
        budget = httpx.get(f"{system['grants'].url}/calls/{journey.call['call_id']}/budget",
                           headers=journey.manager, timeout=10).json()
        assert budget["committed_cents"] == committed.total_cents
        assert budget["available_cents"] == 1_000_000 - committed.total_cents

        mails = await watch.wait_for(lambda: mail_to(infra.smtp_sink_url, journey.visitor_email), what="email")
        assert mails, "the visitor got no email"
        await watch.wait_for(lambda: watch.of_type(EmailSent, app_id), what="EmailSent event")

        # Every downstream service's events are folded into the application's timeline.
        timeline = journey.status(app_id)["timeline"]
        types = [entry["event_type"] for entry in timeline]
        for event_cls in (ApplicationSubmittedV2, EligibilityChecked, ApplicationApproved, HostAccepted, GrantCommitted):
            assert event_cls.ce_type() in types, f"{event_cls.__name__} missing from the timeline: {types}"
        # the mail log is the partnership's: its staff read it in the timeline, the visitor does not
        await watch.wait_for(lambda: EmailSent.ce_type() in [
            e["event_type"] for e in journey.status(app_id, journey.manager)["timeline"]],
            what="the email in the timeline")
        assert EmailSent.ce_type() not in [e["event_type"] for e in journey.status(app_id)["timeline"]]
        # Every record the services wrote is as the event catalog says (topic, type, headers, value, key).
        assert off_catalog(watch.records, namespace) == []
    # ...and every service serves that same catalog, with this run's topic and group names.
    for service in system.values():
        assert httpx.get(f"{service.url}/asyncapi.json", timeout=10).json() == catalog.served(namespace)


async def test_redelivered_events_duplicate_no_state_event_or_email(system, infra, namespace, token):
    journey = Journey(system["applications"].url, token)
    topics = topic_names(namespace, *ALL)
    groups = [consumer_group(name, namespace) for name in SERVICES]
    async with TopicWatcher(infra.kafka, topics) as watch:
        app_id = await run_to_committed_grant(journey, system)
        await watch.wait_for(lambda: mail_to(infra.smtp_sink_url, journey.visitor_email), what="first email")
        # Settled: every event handled, every email it planned sent, the EmailSent events handled
        # too, and every record collected by the watcher.
        await wait_consumed(infra.kafka, groups, topics)
        await wait_mail_settled(system["notifications"].url, app_id, journey.manager)
        await wait_consumed(infra.kafka, groups, topics, watcher=watch)
        ids_before = {e.id for e in watch.envelopes() if e.subject == app_id}
        before_counts = {t: len([e for e in watch.envelopes() if e.subject == app_id and e.type == t])
                         for t in {e.type for e in watch.envelopes()}}
        mails_before = len(mail_to(infra.smtp_sink_url, journey.visitor_email))
        timeline_before = journey.status(app_id)["timeline"]
        budget_url = f"{system['grants'].url}/calls/{journey.call['call_id']}/budget"
        budget_before = httpx.get(budget_url, headers=journey.manager, timeout=10).json()

        # Deliver every event of this exchange a second time, byte for byte, as Kafka may after a rebalance.
        originals = [r for r in list(watch.records) if r.key == app_id.encode()]
        for record in originals:
            await publish_raw(infra.kafka, record.topic, record.value, key=record.key, headers=list(record.headers))
        # At rest again: anything the redelivery caused would have been published and collected.
        await wait_consumed(infra.kafka, groups, topics, watcher=watch)
        await wait_mail_settled(system["notifications"].url, app_id, journey.manager)
        await wait_consumed(infra.kafka, groups, topics, watcher=watch)

        caused_by_redelivery = [(e.type, e.causationid) for e in watch.envelopes()
                                if e.subject == app_id and e.id not in ids_before]
        assert caused_by_redelivery == []
        assert len([r for r in watch.records if r.key == app_id.encode()]) == 2 * len(originals)
        after = {t: len([e for e in watch.envelopes() if e.subject == app_id and e.type == t])
                 for t in before_counts}
        # Each original now appears twice on its topic (our redelivery); nothing new was caused by it.
        assert after == {t: 2 * n for t, n in before_counts.items()}
        assert len({e.id for e in watch.envelopes() if e.subject == app_id}) == len(originals)
        assert len(mail_to(infra.smtp_sink_url, journey.visitor_email)) == mails_before
        assert journey.status(app_id)["timeline"] == timeline_before
        assert httpx.get(budget_url, headers=journey.manager, timeout=10).json() == budget_before


async def test_malformed_message_is_dead_lettered_and_the_next_is_processed(system, infra, namespace, token):
    journey = Journey(system["applications"].url, token)
    journey.open_call()
    journey.enrol_pair()
    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, ASSESSMENT)) as watch:
        await publish_raw(infra.kafka, qualified(APPLICATIONS, namespace), b"\x00 definitely not an event",
                          key=b"poison", headers=[("ce_id", b"p-1"), ("ce_source", b"/fuzzer"),
                                                  ("ce_type", ApplicationSubmitted.ce_type().encode()),
                                                  ("ce_specversion", b"1.0")])
        app_id = journey.submit()["application_id"]
        await journey.wait_status(app_id, "approved")
        def dead_letters() -> list[dict]:
            return [dict(r.headers) for r in watch.records if r.topic == qualified(DEAD_LETTERS, namespace)]

        await watch.wait_for(lambda: any(h["dlq_consumer_group"] == consumer_group("assessment", namespace).encode()
                                         for h in dead_letters()), what="assessment's dead letter")
        assert all(b"value is not JSON" in h["dlq_error"] and h["ce_id"] == b"p-1" for h in dead_letters())


async def test_event_written_but_not_published_arrives_after_a_crash(run_service, infra, namespace, token):
    for downstream in SERVICES[1:]:
        run_service(downstream)
    applications = run_service("applications")
    journey = Journey(applications.url, token)
    journey.open_call()
    journey.enrol_pair()
    await wait_consumed(infra.kafka, [consumer_group("assessment", namespace), consumer_group("grants", namespace)],
                        topic_names(namespace, APPLICATIONS))
    # Neither woken by the write nor polling: the relay publishes only at start-up, so a
    # submission stays in its document's outbox until the fallback pass after the restart.
    applications.stop()
    applications.start(OUTBOX_POLL_SECONDS="3600", OUTBOX_WAKE_UP="false")
    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS, ASSESSMENT)) as watch:
        app_id = journey.submit()["application_id"]
        applications.kill()  # SIGKILL between the state write and the publish
        assert not watch.of_type(ApplicationSubmittedV2, app_id)
        applications.start()
        await watch.wait_for(lambda: watch.of_type(ApplicationSubmittedV2, app_id), what="the event after restart")
        await watch.wait_for(lambda: watch.of_type(ApplicationApproved, app_id), what="assessment's decision")
        assert len(watch.of_type(ApplicationSubmittedV2, app_id)) == 1
    await journey.wait_status(app_id, "approved")

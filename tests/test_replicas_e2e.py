"""Two replicas of every service share one stream: the consumer group splits the records
and the relays lease each outbox, so nothing is doubled: no state, event, email or money."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from cx_shared.events.assessment import ApplicationApproved, HostAccepted
from cx_shared.events.grants import GrantCommitted
from cx_shared.events.notifications import EmailSent
from cx_shared.testing.kafka import TopicWatcher, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, consumer_group
from tests.journey import Journey, mail_to, wait_mail_settled
from tests.test_lifecycle_e2e import SERVICES

pytestmark = pytest.mark.infra
EXCHANGES = 6
BUDGET = 10_000_000


async def one_exchange(journey: Journey, n: int, replicas: dict) -> str:
    """Enrol, submit and accept through replica n % 2 of each service."""
    journey.enrol_pair()
    app_id = journey.submit()["application_id"]
    await journey.wait_status(app_id, "approved")
    assessment = replicas["assessment"][n % 2]
    decision = httpx.post(f"{assessment.url}/applications/{app_id}/host-decision", json={"accept": True},
                          headers=journey.host_headers, timeout=20)
    assert decision.status_code in (200, 201, 202), decision.text
    await journey.wait_status(app_id, "grant_committed")
    return app_id


async def test_two_replicas_of_each_service_double_nothing(run_service, infra, namespace, token):
    replicas = {name: [run_service(name), run_service(name)] for name in SERVICES}
    first = Journey(replicas["applications"][0].url, token)
    call = first.open_call(budget_cents=BUDGET)
    journeys = []
    for n in range(EXCHANGES):
        journey = Journey(replicas["applications"][n % 2].url, token)
        journey.call = call
        journeys.append(journey)
    topics = topic_names(namespace, APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS)
    async with TopicWatcher(infra.kafka, topics) as watch:
        app_ids = await asyncio.gather(*(one_exchange(j, n, replicas) for n, j in enumerate(journeys)))
        for journey, app_id in zip(journeys, app_ids):
            await wait_mail_settled(replicas["notifications"][0].url, app_id, first.manager)
        await wait_consumed(infra.kafka, [consumer_group(s, namespace) for s in SERVICES], topics, watcher=watch)

        for app_id in app_ids:
            for once in (ApplicationApproved, HostAccepted, GrantCommitted):
                assert len({e.id for e in watch.of_type(once, app_id)}) == 1, f"{once.__name__} of {app_id}"
            sent = [e.event() for e in watch.of_type(EmailSent, app_id)]
            assert sent and len({e.notification_id for e in sent}) == len({e.id for e in watch.of_type(EmailSent, app_id)})
        committed = sum(watch.of_type(GrantCommitted, a)[0].event().total_cents for a in app_ids)
        budget = httpx.get(f"{replicas['grants'][1].url}/calls/{call['call_id']}/budget",
                           headers=first.manager, timeout=10).json()
        assert budget["committed_cents"] == committed
        assert budget["available_cents"] == BUDGET - committed
        for journey, app_id in zip(journeys, app_ids):
            mails = [m["subject"] for m in mail_to(infra.smtp_sink_url, journey.visitor_email)]
            assert mails and max(Counter(mails).values()) == 1, f"an email to the visitor twice: {mails}"

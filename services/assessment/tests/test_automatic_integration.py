"""Automatic calls over the real broker and database: eligibility, decisions within the
envelope, host acceptance and decline, promotion on released money, redeliveries."""

from __future__ import annotations

from collections import Counter

import pytest

from cx_shared.events.assessment import (ApplicationApproved, ApplicationRejected, ApplicationWaitlisted,
                                         EligibilityChecked, HostAccepted, HostDeclined)
from cx_shared.events.grants import CommitmentReleased
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import ASSESSMENT

from cx_shared.lump_sums import exchange_lump_sum

pytestmark = pytest.mark.infra
FIVE_DAYS = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents


def tally(watcher: TopicWatcher) -> Counter:
    return Counter((e.type.split(".")[-2], e.subject) for e in watcher.envelopes())


async def test_automatic_call_end_to_end(run_service, infra, namespace, publish, drained, client, token, upstream):
    call_published, submitted, participant, from_grants = (upstream.call_published, upstream.submitted,
                                                           upstream.participant, upstream.from_grants)
    service = run_service("assessment")
    call = call_published("call-a", budget_cents=FIVE_DAYS + FIVE_DAYS // 2)
    a1 = submitted("a1", "call-a")
    a2 = submitted("a2", "call-a", host=participant("h-a2", "FR"))  # not transnational
    a3 = submitted("a3", "call-a")
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        # a1 arrives before its call (another partition): it waits and is assessed first
        await publish(a1)
        await drained(watcher)
        assert watcher.of_type(EligibilityChecked) == []
        await publish(call)
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "a1"), 60, "a1 approved")
        await publish(a2, a3)
        await watcher.wait_for(lambda: watcher.of_type(ApplicationWaitlisted, "a3"), 60, "a3 waitlisted")
        await watcher.wait_for(lambda: watcher.of_type(ApplicationRejected, "a2"), 60, "a2 rejected")

        (checked,) = watcher.of_type(EligibilityChecked, "a2")
        assert checked.data["eligible"] is False and checked.data["rule_set_version"] == "default-v1@1"
        failed = [o for o in checked.data["outcomes"] if not o["passed"]]
        assert [o["rule"] for o in failed] == ["transnational"]
        (rejected,) = watcher.of_type(ApplicationRejected, "a2")
        assert rejected.data["reasons"] == [f"transnational: {failed[0]['reason']}"]
        assert rejected.causationid == a2.id and rejected.correlationid == a2.correlationid
        assert watcher.of_type(ApplicationApproved, "a1")[0].causationid == a1.id  # in the submission's story

        # redelivered events (same ids) and a duplicate submission (new id) change nothing
        before = tally(watcher)
        await publish(call, a1, a2, a3, submitted("a1", "call-a"))
        await drained(watcher)
        assert tally(watcher) == before

        # the host: wrong organisation, wrong role, then accept
        url = f"{service.url}/applications/a1/host-decision"
        wrong_org = await client.post(url, json={"accept": True}, headers=token("host", organisation_id="h-a3"))
        assert wrong_org.status_code == 403
        as_visitor = await client.post(url, json={"accept": True}, headers=token("visitor", organisation_id="h-a1"))
        assert as_visitor.status_code == 403
        accepted = await client.post(url, json={"accept": True}, headers=token("host", organisation_id="h-a1"))
        assert accepted.status_code == 200 and accepted.json()["status"] == "host_accepted"
        (host_accepted,) = await watcher.wait_for(lambda: watcher.of_type(HostAccepted, "a1"), 60, "host accepted")
        assert host_accepted.data["host_id"] == "h-a1"
        not_yet = await client.post(f"{service.url}/applications/a3/host-decision", json={"accept": True},
                                    headers=token("host", organisation_id="h-a3"))
        assert not_yet.status_code == 409  # a3 is waitlisted

        # grants releases a1's commitment: the first waitlisted (a3) is approved, once
        released = from_grants(CommitmentReleased(application_id="a1", call_id="call-a", released_cents=FIVE_DAYS,
                                                  reason="visitor withdrew"))
        await publish(released)
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "a3"), 60, "a3 promoted")
        await publish(released)
        await drained(watcher)
        assert len(watcher.of_type(ApplicationApproved, "a3")) == 1

        # the host of a3 declines with a reason: the visitor is told through the event
        no_reason = await client.post(f"{service.url}/applications/a3/host-decision", json={"accept": False},
                                      headers=token("host", organisation_id="h-a3"))
        assert no_reason.status_code == 422
        declined = await client.post(f"{service.url}/applications/a3/host-decision",
                                     json={"accept": False, "reason": "our lab is closed in March"},
                                     headers=token("host", organisation_id="h-a3"))
        assert declined.status_code == 200
        (host_declined,) = await watcher.wait_for(lambda: watcher.of_type(HostDeclined, "a3"), 60, "declined")
        assert host_declined.data["reason"] == "our lab is closed in March"

        # the visitor reads the decision; a stranger cannot
        mine = await client.get(f"{service.url}/applications/a2", headers=token("visitor", organisation_id="v-a2"))
        assert mine.status_code == 200 and mine.json()["status"] == "rejected" and "assessments" not in mine.json()
        stranger = await client.get(f"{service.url}/applications/a2", headers=token("visitor", organisation_id="x"))
        assert stranger.status_code == 403
        asyncapi = (await client.get(f"{service.url}/asyncapi.json")).text
        assert "application.submitted" in asyncapi and "commitment.released" in asyncapi

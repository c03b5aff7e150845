"""Issue 13 (c) over the broker: assessment as a real process follows grants' money events. A
top-up that overtakes its call (grants' topic before applications') is kept and applied when
the call opens, once; the waitlist moves on it; redelivered, it changes nothing."""

from __future__ import annotations

import pytest

from cx_shared.envelope import Envelope
from cx_shared.events.assessment import ApplicationApproved, ApplicationWaitlisted
from cx_shared.events.grants import BudgetToppedUp
from cx_shared.lump_sums import exchange_lump_sum
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import ASSESSMENT

pytestmark = pytest.mark.infra
FIVE_DAYS = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents


def topped_up(call_id: str, amount: int) -> Envelope:
    return Envelope.wrap(BudgetToppedUp(call_id=call_id, amount_cents=amount, budget_after_cents=amount,
                                        available_after_cents=amount, reason="more"),
                         source="/clusterxchange/grants", subject=call_id)


async def test_c_a_top_up_before_its_call_counts_once_and_moves_the_waitlist(run_service, infra, namespace,
                                                                             publish, drained, client, token,
                                                                             upstream):
    service = run_service("assessment")
    manager = token("programme_manager", subject="pm", programme=True)
    early, late = topped_up("call-t", FIVE_DAYS), topped_up("call-t", FIVE_DAYS)
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        await publish(early)  # before the call: kept
        await drained(watcher)
        await publish(upstream.call_published("call-t", budget_cents=0), upstream.submitted("a1", "call-t"))
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "a1"), 60, "a1 approved")
        await publish(upstream.submitted("a2", "call-t"))  # after a1: nothing left for it
        await watcher.wait_for(lambda: watcher.of_type(ApplicationWaitlisted, "a2"), 60, "a2 waitlisted")
        await publish(early, late, late)  # redeliveries count nothing; the new top-up promotes a2
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "a2"), 60, "a2 approved")
        await drained(watcher)
    book = (await client.get(f"{service.url}/calls/call-t", headers=manager)).json()
    assert (book["budget_cents"], book["envelope_left_cents"]) == (2 * FIVE_DAYS, 0)

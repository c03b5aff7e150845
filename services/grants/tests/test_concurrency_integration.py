"""Many approvals at one small budget, handled by three grants processes of one consumer
group in parallel (one per partition), with every acceptance delivered twice: exactly as
many commitments as the budget allows, never a negative balance, a balanced ledger."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cx_shared.events.grants import GrantCommitted, GrantRefused
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra

EXCHANGES = 18
AFFORDABLE = 5
LUMP_SUM = 32_000 + 10 * 14_000  # Brussels -> Vilnius, green, 10 working days (see the domain tests)


async def test_parallel_consumers_never_overrun_a_small_budget(run_service, infra, namespace, publish, upstream,
                                                              drained, token):
    processes = [run_service("grants") for _ in range(3)]
    officer = token("programme_manager", subject="pm", programme=True)
    call_id = upstream.new_id("call")
    budget = AFFORDABLE * LUMP_SUM + LUMP_SUM // 2  # room for five and a half
    apps = [upstream.new_id("app") for _ in range(EXCHANGES)]

    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(call_id, budget),
                      *(upstream.application_submitted(app, call_id) for app in apps),
                      *(upstream.application_approved(app, call_id) for app in apps))
        await drained(grants_topic)  # the facts and approvals are in before the acceptances race for the budget
        acceptances = [upstream.host_accepted(app, call_id) for app in apps]
        await publish(*acceptances, *acceptances)  # every acceptance is delivered twice

        def outcomes():
            decided = {e.subject for e in grants_topic.of_type(GrantCommitted) + grants_topic.of_type(GrantRefused)}
            return decided >= set(apps)
        await grants_topic.wait_for(outcomes, 90, "an outcome for every exchange")
        await drained(grants_topic)  # the duplicate deliveries were handled too
        await asyncio.sleep(1)  # and their events (if any) relayed

        # Each process relays the shared outbox, so an event may be published more than once:
        # at-least-once delivery, deduplicated by CloudEvents id (as every consumer does).
        committed = distinct(grants_topic.of_type(GrantCommitted))
        refused = distinct(grants_topic.of_type(GrantRefused))
        assert len(committed) == AFFORDABLE and len({e.subject for e in committed}) == AFFORDABLE
        assert len(refused) == EXCHANGES - AFFORDABLE
        assert all(e.event().available_after_cents >= 0 for e in committed)
        assert all("insufficient budget" in e.event().reason for e in refused)

    async with httpx.AsyncClient(timeout=30) as http:
        url = processes[0].url
        balances = (await http.get(f"{url}/calls/{call_id}/budget", headers=officer)).json()
        assert balances["committed_cents"] == AFFORDABLE * LUMP_SUM
        assert balances["available_cents"] == budget - AFFORDABLE * LUMP_SUM >= 0
        recon = (await http.get(f"{url}/calls/{call_id}/reconciliation", headers=officer)).json()
        assert recon["balanced"], recon["problems"]
        ledger = (await http.get(f"{url}/calls/{call_id}/ledger", headers=officer)).json()
        assert [e["kind"] for e in ledger].count("commitment") == AFFORDABLE
        assert min(e["balances_after"]["available_cents"] for e in ledger) >= 0
        # Each commitment was caused by a different acceptance.
        handled_by = {e["cause"]["event_id"] for e in ledger if e["kind"] == "commitment"}
        assert len(handled_by) == AFFORDABLE
    await assert_several_processes_consumed(processes)


def distinct(envelopes):
    return list({e.id: e for e in envelopes}.values())


async def assert_several_processes_consumed(processes) -> None:
    """Each process logs the events it handled; at least two of the three must have handled acceptances."""
    busy = 0
    for proc in processes:
        log = (proc.log_dir / f"{proc.name}-{proc.port}.log").read_text(errors="replace")
        busy += "host.accepted" in log
    assert busy >= 2, "the acceptances were not spread over parallel consumers"

"""A call's budget on the real database under heavy contention: many writers with their own
connections (as replicas would be) deciding on one budget at once, then every decision
redelivered; and a delivery that stops between two writes, then comes again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from cx_shared import tally

from grants import domain
from grants.budgeting import act_on_exchange
from grants.domain import Cause, Parties
from cx_shared.lump_sums import Location, compute_lump_sum
from cx_shared.lump_sum_rules import DEFAULT_V1
from grants.storage import COMMITMENTS, Storage

pytestmark = pytest.mark.infra

PARTIES = Parties("org-v", "Visitor", "BE", "org-h", "Host", "LT")
EXCHANGE = {"planned_start": "2026-04-06", "planned_end": "2026-04-17", "working_days": 10, "travel_mode": "green"}
LUMP = compute_lump_sum(DEFAULT_V1, Location("Brussels", "BE", 50.85045, 4.34878),
                        Location("Vilnius", "LT", 54.68916, 25.2798), 10, "green")
WRITERS, EXCHANGES, AFFORDABLE = 4, 24, 5


async def test_concurrent_writers_commit_exactly_what_the_budget_allows(infra, mongo_db):
    clients = [AsyncMongoClient(infra.mongodb_url, tz_aware=True) for _ in range(WRITERS)]
    stores = [Storage(c[mongo_db.name]) for c in clients]
    try:
        await stores[0].init()
        cause = Cause(actor="test", at=datetime.now(UTC))
        budget, opening = domain.opening("call-1", "p-1", AFFORDABLE * LUMP.total_cents + LUMP.total_cents // 2,
                                         "default-v1", cause, "opened")
        assert await stores[0].open_budget(budget, opening, title="t", events=[])

        async def decide(i: int):
            return await act_on_exchange(stores[i % WRITERS], "call-1", f"app-{i}", commit(f"app-{i}", cause),
                                         lambda change: [], cause=f"event-{i}")

        results = await asyncio.gather(*(decide(i) for i in range(EXCHANGES)))
        committed = [r for r in results if r is not None and r[0] == "committed"]
        refused = [r for r in results if r is not None and r[0] == "refused"]
        assert len(committed) == AFFORDABLE and len(refused) == EXCHANGES - AFFORDABLE

        redelivered = await asyncio.gather(*(decide(i) for i in range(EXCHANGES)))
        assert redelivered == [None] * EXCHANGES

        envelope = await stores[1].budget("call-1")
        assert envelope["seq"] == AFFORDABLE  # one change per commitment; none for refusals or redeliveries
        outcomes = await stores[1].db[COMMITMENTS].find({"call_id": "call-1"}).to_list()
        states = sorted(d["state"] for d in outcomes)
        assert states == ["committed"] * AFFORDABLE + ["refused"] * (EXCHANGES - AFFORDABLE)
        assert all(d["pending"] is None for d in outcomes)
        assert len(await stores[1].commitments("call-1")) == AFFORDABLE
        assert envelope["available_cents"] == LUMP.total_cents // 2
        entries, recorded = await stores[2].ledger("call-1")
        assert domain.reconcile("call-1", entries, recorded)["balanced"]
    finally:
        for c in clients:
            await c.close()


def commit(application_id: str, cause: Cause):
    return lambda b: domain.commit(b, application_id, PARTIES, LUMP, DEFAULT_V1, cause, "sha", "/p", EXCHANGE)


class Crash(Exception):
    """The process dies here: nothing after this write happens."""


def crash_once(storage: Storage, step: str) -> None:
    """Make ``storage`` die right after its next ``step`` (stage or charge) has been written."""
    original = getattr(storage, step)

    async def dying(*args, **kwargs):
        setattr(storage, step, original)
        await original(*args, **kwargs)
        raise Crash(step)
    setattr(storage, step, dying)


async def opened(storage: Storage, call_id: str, cents: int) -> Cause:
    await storage.init()
    cause = Cause(actor="test", at=datetime.now(UTC))
    budget, opening = domain.opening(call_id, "p-1", cents, "default-v1", cause, "opened")
    assert await storage.open_budget(budget, opening, title="t", events=[])
    return cause


async def assert_committed_once(storage: Storage, call_id: str, application_ids: list[str], cents: int) -> None:
    for application_id in application_ids:
        doc = await storage.commitment(application_id)
        assert doc["state"] == "committed" and doc["pending"] is None and doc["processed"] == [f"ev-{application_id}"]
    envelope = await storage.budget(call_id)
    assert envelope["committed_cents"] == len(application_ids) * LUMP.total_cents
    assert envelope["available_cents"] == cents - len(application_ids) * LUMP.total_cents >= 0
    entries, recorded = await storage.ledger(call_id)
    assert [e["kind"] for e in entries].count("commitment") == len(application_ids)
    report = domain.reconcile(call_id, entries, recorded)
    assert report["balanced"], report["problems"]


@pytest.mark.parametrize("step", ["stage", "charge"])
async def test_a_redelivery_after_a_crash_between_the_writes_commits_once(mongo_db, step):
    storage, cents = Storage(mongo_db), 10 * LUMP.total_cents
    cause = await opened(storage, "call-c", cents)
    crash_once(storage, step)
    with pytest.raises(Crash):
        await act_on_exchange(storage, "call-c", "a1", commit("a1", cause), lambda change: [], cause="ev-a1")
    # the redelivered acceptance resumes what is stored, and a second one changes nothing
    assert (await act_on_exchange(storage, "call-c", "a1", commit("a1", cause), lambda change: [],
                                  cause="ev-a1"))[0] == "committed"
    assert await act_on_exchange(storage, "call-c", "a1", commit("a1", cause), lambda change: [], cause="ev-a1") is None
    await assert_committed_once(storage, "call-c", ["a1"], cents)


@pytest.mark.parametrize("step", ["stage", "charge"])
async def test_a_redelivery_after_a_crash_while_the_budget_moves_on_commits_once(mongo_db, step, monkeypatch):
    """Other commitments change the budget before the redelivery: further back than the ring of
    causes remembers (shrunk here to two), so the ledger tells whether the stopped change was taken."""
    monkeypatch.setattr(tally, "RING", 2)
    storage, cents = Storage(mongo_db), 10 * LUMP.total_cents
    cause = await opened(storage, "call-m", cents)
    crash_once(storage, step)
    with pytest.raises(Crash):
        await act_on_exchange(storage, "call-m", "a1", commit("a1", cause), lambda change: [], cause="ev-a1")
    others = [f"b{i}" for i in range(4)]
    for other in others:
        await act_on_exchange(storage, "call-m", other, commit(other, cause), lambda change: [], cause=f"ev-{other}")
    assert (await act_on_exchange(storage, "call-m", "a1", commit("a1", cause), lambda change: [],
                                  cause="ev-a1"))[0] == "committed"
    await assert_committed_once(storage, "call-m", ["a1", *others], cents)

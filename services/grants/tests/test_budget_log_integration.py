"""The budget log on the real database under heavy contention: many writers with their own
connections deciding on one budget at once, then every decision redelivered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from grants import domain
from grants.domain import Cause, Parties
from grants.lump_sums import Location, compute_lump_sum
from grants.rules import DEFAULT_V1
from grants.storage import Storage

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
            def commit(b):
                return domain.commit(b, f"app-{i}", PARTIES, LUMP, DEFAULT_V1, cause, "sha", "/p", EXCHANGE)
            return await stores[i % WRITERS].update_budget("call-1", commit, lambda change: [],
                                                           processed=f"event-{i}")

        results = await asyncio.gather(*(decide(i) for i in range(EXCHANGES)))
        committed = [r for r in results if r is not None and r.commitments]
        refused = [r for r in results if r is not None and r.refusals]
        assert len(committed) == AFFORDABLE and len(refused) == EXCHANGES - AFFORDABLE

        redelivered = await asyncio.gather(*(decide(i) for i in range(EXCHANGES)))
        assert redelivered == [None] * EXCHANGES

        state, seq, _ = await stores[1].state("call-1")
        assert seq == 1 + EXCHANGES  # the opening, then one append per decision, none for redeliveries
        assert len(state.commitments) == AFFORDABLE and len(state.refusals) == EXCHANGES - AFFORDABLE
        assert state.balances["available_cents"] == LUMP.total_cents // 2
        entries, recorded = await stores[2].ledger("call-1")
        assert domain.reconcile("call-1", entries, recorded)["balanced"]
    finally:
        for c in clients:
            await c.close()

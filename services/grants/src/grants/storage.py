"""The only module that knows MongoDB (FerretDB locally): budget logs, exchanges, agreements.

A call's budget is an append-only log: every change of its money is ONE inserted document
``<call_id>#<seq>`` carrying the ledger entries, the balances after them, the commitment and
refusal records it changes, the events it causes (outbox) and the id of the causing event.
The unique ``_id`` makes the append a compare-and-set: of two consumers deciding on the same
state only one can write ``seq + 1``; the other re-reads and decides again. This holds on
MongoDB and on FerretDB, whose ``update_one`` does not serialise a filter with its update
(measured: concurrent version-checked updates lose writes there; unique inserts do not).

The ``budgets`` collection only caches the folded state (a snapshot at some seq); the log is
the truth, and a stale snapshot only means folding a few more log documents.
Facts about an exchange (application, host acceptance, withdrawal) are insert-only documents
for the same reason: no document is ever updated by two writers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared.envelope import Envelope
from cx_shared.logging import get_logger
from cx_shared.store import new_document

from grants.domain import BALANCES, Budget, BudgetChange, commitment_key

BUDGET_LOG, BUDGETS = "budget_log", "budgets"
FACTS, ACCEPTANCES, WITHDRAWALS, AGREEMENTS = "exchange_facts", "host_acceptances", "withdrawals", "agreements"
OUTBOX_COLLECTIONS = [BUDGET_LOG]
MAX_ATTEMPTS = 200
log = get_logger(__name__)
META = ("call_id", "partnership_id", "rule_set_version", "title")


class Contention(RuntimeError):
    """The budget kept changing under us; the consumer retries the event."""


def log_id(call_id: str, seq: int) -> str:
    return f"{call_id}#{seq:010d}"


class Storage:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.log, self.snapshots = db[BUDGET_LOG], db[BUDGETS]
        self.facts, self.acceptances, self.withdrawals = db[FACTS], db[ACCEPTANCES], db[WITHDRAWALS]
        self.agreements = db[AGREEMENTS]

    async def init(self) -> None:
        await self.log.create_index([("call_id", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self.log.create_index([("processed", ASCENDING)])
        await self.acceptances.create_index([("call_id", ASCENDING)])

    # --- budgets: append, fold, read ----------------------------------------------------------

    async def open_budget(self, budget: Budget, opening: BudgetChange, *, title: str, events: Sequence[Envelope],
                          processed: str | None = None) -> bool:
        """Append the first entry of a call's budget; False when the call already has one."""
        meta = {"call_id": budget.call_id, "partnership_id": budget.partnership_id,
                "rule_set_version": budget.rule_set_version, "title": title}
        try:
            await self.log.insert_one(self._log_doc(budget.call_id, 1, opening, budget.balances, events, processed,
                                                    meta))
            return True
        except DuplicateKeyError:
            return False

    async def state(self, call_id: str) -> tuple[Budget, int, dict[str, Any]] | None:
        """The budget folded up to its last appended change: (state, seq, call metadata)."""
        snapshot = await self.snapshots.find_one({"_id": call_id})
        if snapshot is None:
            first = await self.log.find_one({"_id": log_id(call_id, 1)}, {"outbox": 0})
            if first is None:
                return None
            meta = first["meta"]
            budget = Budget(call_id, meta["partnership_id"], meta["rule_set_version"], dict.fromkeys(BALANCES, 0))
            seq = 0
        else:
            meta = snapshot["meta"]
            budget = Budget(call_id, meta["partnership_id"], meta["rule_set_version"], dict(snapshot["balances"]),
                            dict(snapshot["commitments"]), dict(snapshot["refusals"]), snapshot["ledger_size"])
            seq = snapshot["seq"]
        async for doc in self.log.find({"call_id": call_id, "seq": {"$gt": seq}}, {"outbox": 0}).sort("seq", ASCENDING):
            budget.balances = dict(doc["balances"])
            budget.commitments.update(doc.get("commitments") or {})
            budget.refusals.update(doc.get("refusals") or {})
            budget.ledger_size += len(doc["entries"])
            seq = doc["seq"]
        return budget, seq, meta

    async def update_budget(self, call_id: str, decide: Callable[[Budget], BudgetChange | None],
                            wrap: Callable[[BudgetChange], list[Envelope]], *,
                            processed: str | None = None) -> BudgetChange | None:
        """Fold, decide (pure), append; again on a lost race. None when there is nothing to do:
        no budget, an event this budget already applied, or a decision that changes nothing."""
        for attempt in range(MAX_ATTEMPTS):
            found = await self.state(call_id)
            if found is None or (processed and await self.log.find_one({"call_id": call_id, "processed": processed},
                                                                       {"_id": 1})):
                return None
            budget, seq, meta = found
            change = decide(budget)
            if change is None:
                return None
            budget.apply(change)
            try:
                await self.log.insert_one(self._log_doc(call_id, seq + 1, change, budget.balances, wrap(change),
                                                        processed))
            except DuplicateKeyError:  # another consumer appended first: decide again on its result
                log.info("lost the race for the budget, deciding again", call_id=call_id, seq=seq + 1)
                await asyncio.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
                continue
            await self._save_snapshot(budget, seq + 1, meta)
            return change
        raise Contention(f"budget {call_id} changed {MAX_ATTEMPTS} times while deciding")

    @staticmethod
    def _log_doc(call_id: str, seq: int, change: BudgetChange, balances: Mapping[str, int],
                 events: Sequence[Envelope], processed: str | None, meta: Mapping[str, Any] | None = None) -> dict:
        if any(balances[name] < 0 for name in BALANCES):
            raise AssertionError(f"refusing to record a negative balance for {call_id}: {balances}")
        doc = {"_id": log_id(call_id, seq), "call_id": call_id, "seq": seq, "at": datetime.now(UTC),
               "entries": change.entries, "balances": dict(balances),
               "commitments": change.commitments, "refusals": change.refusals}
        if meta:
            doc["meta"] = dict(meta)
        return new_document(doc, events=events, processed=processed)

    async def _save_snapshot(self, budget: Budget, seq: int, meta: Mapping[str, Any]) -> None:
        """Cache the folded state; a racing older snapshot may win, which only costs folding."""
        snapshot = {"_id": budget.call_id, "seq": seq, "meta": dict(meta), "balances": budget.balances,
                    "commitments": budget.commitments, "refusals": budget.refusals, "ledger_size": budget.ledger_size,
                    "partnership_id": budget.partnership_id}
        try:
            await self.snapshots.replace_one({"_id": budget.call_id, "seq": {"$lt": seq}}, snapshot, upsert=True)
        except DuplicateKeyError:
            pass  # a newer snapshot is there already

    async def view(self, call_id: str) -> dict[str, Any] | None:
        """Metadata and balances of a call's budget, and its commitments."""
        found = await self.state(call_id)
        if found is None:
            return None
        budget, seq, meta = found
        return {**meta, **budget.balances, "seq": seq, "commitments": budget.commitments,
                "refusals": budget.refusals}

    async def calls_of(self, partnership_ids: list[str] | None) -> list[str]:
        query: dict[str, Any] = {"seq": 1}
        if partnership_ids is not None:
            query["meta.partnership_id"] = {"$in": partnership_ids}
        return [d["call_id"] async for d in self.log.find(query, {"call_id": 1})]

    async def ledger(self, call_id: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Every ledger entry of the call in order, and the balances its log last recorded."""
        entries, balances = [], dict.fromkeys(BALANCES, 0)
        async for doc in self.log.find({"call_id": call_id}, {"entries": 1, "balances": 1}).sort("seq", ASCENDING):
            entries += doc["entries"]
            balances = doc["balances"]
        return entries, balances

    async def call_of_exchange(self, application_id: str) -> str | None:
        doc = await self.log.find_one({f"commitments.{commitment_key(application_id)}": {"$exists": True}},
                                      {"call_id": 1}, sort=[("seq", DESCENDING)])
        return doc["call_id"] if doc else None

    # --- exchanges: insert-only facts --------------------------------------------------------

    async def _insert_once(self, collection, doc: Mapping[str, Any]) -> bool:
        try:
            await collection.insert_one(dict(doc))
            return True
        except DuplicateKeyError:
            return False  # the first fact stands; a redelivery changes nothing

    async def record_facts(self, application_id: str, call_id: str, facts: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.facts, {"_id": application_id, "call_id": call_id, **facts})

    async def record_acceptance(self, application_id: str, call_id: str, acceptance: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.acceptances, {"_id": application_id, "call_id": call_id, **acceptance})

    async def record_withdrawal(self, application_id: str, call_id: str, reason: str) -> bool:
        return await self._insert_once(self.withdrawals, {"_id": application_id, "call_id": call_id,
                                                          "reason": reason, "at": datetime.now(UTC)})

    async def exchange(self, application_id: str) -> dict[str, Any]:
        """What is known of an exchange: facts, acceptance, withdrawal (each may be None)."""
        facts, acceptance, withdrawal = await asyncio.gather(
            self.facts.find_one({"_id": application_id}), self.acceptances.find_one({"_id": application_id}),
            self.withdrawals.find_one({"_id": application_id}))
        return {"facts": facts, "acceptance": acceptance, "withdrawal": withdrawal}

    async def accepted_exchanges(self, call_id: str) -> list[str]:
        return [d["_id"] async for d in self.acceptances.find({"call_id": call_id}, {"_id": 1})]

    # --- agreements ----------------------------------------------------------------------

    async def save_agreement(self, application_id: str, call_id: str, document: bytes, sha256: str) -> None:
        # Rendering is deterministic, so a second delivery stores nothing new.
        await self._insert_once(self.agreements, {"_id": application_id, "call_id": call_id, "sha256": sha256,
                                                  "document": Binary(document), "stored_at": datetime.now(UTC)})

    async def agreement_document(self, application_id: str) -> bytes | None:
        doc = await self.agreements.find_one({"_id": application_id})
        return bytes(doc["document"]) if doc else None

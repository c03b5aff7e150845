"""The only module that knows MongoDB (FerretDB locally): budgets, commitments, ledger, facts.

Every document a change touches is found by its ``_id``, so a change costs the same in the
first and in the ten-thousandth exchange of a call:

- ``budgets``: one envelope per call: metadata, the balances in cents, ``ledger_size`` and the
  ledger entries of its last change; changed only by ``cx_shared.tally``'s compare-and-set on
  ``seq``, which keeps the causes of its last changes in a fixed ring;
- ``commitments``: one document per exchange (``_id`` = application id): ``call_id``, ``state``
  (committed, released, refused), ``amount_cents``, the commitment (or refusal) ``record``,
  ``rev``, a ``pending`` change, its own ``processed`` ids and ``outbox``; ``top_ups`` the same
  per top-up (``_id`` = call id and idempotency key);
- ``ledger``: append-only, one document per entry, ``_id`` = ``<call_id>#<seq>``; read only by
  the ledger report (indexed by call and seq);
- ``exchange_facts``, ``approvals``, ``host_acceptances``, ``withdrawals``, ``agreements``: insert-only;
- ``calls``: the calls seen in ``CallPublished`` with their partnership (insert-only): a budget is
  opened only for one of them, by its partnership's staff;
- ``accepted_reports``: the figures of the report the partnership's review accepted (insert-only),
  the only source of a balance;
- ``actions``: four eyes (four_eyes.py): one document per kind and subject (``_id`` = the slot,
  ``balance_payment:<application>``, ``cancellation:<application>``, ``top_up:<call>``) holding
  the latest action, changed by compare-and-set on ``rev`` with its events in its outbox.

No transaction (FerretDB has none), so a change of money is written in this order:

1. stage: the operation's document gets ``pending`` = the whole decision (cause, the budget
   ``seq`` it was made on, the ``$inc`` of the balances, ledger entries, record, events);
2. charge: first the entries of the budget's last change are posted to the ledger under their
   deterministic ``_id`` (twice is harmless), then the budget takes the ``$inc`` and this
   change's entries if its ``seq`` is unchanged, remembering the cause in its ring;
3. finish: the operation's document takes the record, the events in its outbox and the cause
   in ``processed``, and drops ``pending``.

So every change's entries reach the ledger with the change itself (in the budget) and are
posted before the next change replaces them; the ledger report posts the last ones. A crash
anywhere leaves the pending change; the redelivered event (or the next change of that
exchange) finds it and asks ``charged``: taken by the budget (its cause is in the ring, or, too
far back for the ring, its entries are the ones posted at its position) → only 3 is redone;
still chargeable (the budget has not moved) → charged now; overtaken (someone else changed the
budget at that seq) → it can never be charged and a fresh decision replaces it. So money is
charged at most once (seq, ring, ledger), never lost (its entries travel in the same update)
and never overdrawn (the decision was made on the very balances the compare-and-set proves
current).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared import tally
from cx_shared.envelope import Envelope
from cx_shared.races import LostRace
from cx_shared.events.common import Kept
from cx_shared.personal_data.erasure import TOMBSTONES, Forgotten, Tombstones
from cx_shared.personal_data.export import ANSWERS, documents_in
from cx_shared.personal_data.keys import KeyRing
from cx_shared.store import PLUMBING, change as with_events, new_document

from grants.domain import BALANCES, Budget, BudgetChange, commitment_key

BUDGETS, COMMITMENTS, TOP_UPS, LEDGER = "budgets", "commitments", "top_ups", "ledger"
FACTS, ACCEPTANCES, WITHDRAWALS, AGREEMENTS = "exchange_facts", "host_acceptances", "withdrawals", "agreements"
APPROVALS, CALLS, REPORTS, ACTIONS = "approvals", "calls", "accepted_reports", "actions"
OUTBOX_COLLECTIONS = [BUDGETS, COMMITMENTS, TOP_UPS, ACTIONS, TOMBSTONES, ANSWERS]
DECISION = ("verified_by", "rejected_by", "rejection_reason", "decided_at")  # of an action, reset by the next
PARTIES = ("parties.visitor_organisation_id", "parties.host_organisation_id")  # on an exchange's facts
META = ("call_id", "partnership_id", "rule_set_version", "title")
LAST_ENTRIES = "last_entries"
REFUSED = "refused"
HIDDEN = dict.fromkeys(PLUMBING, 0)  # the outbox and its marks are the relay's, not a reader's


def strip(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("_id", "rev")}


@dataclass(frozen=True)
class Operation:
    """The document a change of the budget is about: an exchange's commitment or a top-up."""

    collection: str
    id: str
    call_id: str


def entry_id(entry: Mapping[str, Any]) -> str:
    return f"{entry['call_id']}#{entry['seq']:010d}"


def plan(envelope: Mapping[str, Any], change: BudgetChange, events: Iterable[Envelope], cause: str) -> dict[str, Any]:
    """The pending form of a decision made on ``envelope``: everything needed to finish it."""
    state, record = change.outcome() or ("done", None)
    inc = change.deltas()
    if change.entries:
        inc["ledger_size"] = len(change.entries)
    return {"cause": cause, "budget_seq": envelope.get(tally.SEQ, 0), "inc": inc, "entries": change.entries,
            "state": state, "record": record, "amount_cents": (record or {}).get("amount_cents", 0),
            "events": [e.to_outbox() for e in events]}


class Storage:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.budgets, self.ledger_entries = db[BUDGETS], db[LEDGER]
        self.facts, self.acceptances, self.withdrawals = db[FACTS], db[ACCEPTANCES], db[WITHDRAWALS]
        self.agreements = db[AGREEMENTS]
        self.approvals, self.calls = db[APPROVALS], db[CALLS]
        self.reports, self.actions = db[REPORTS], db[ACTIONS]
        self.tombstones = Tombstones(db)
        self.keys: KeyRing | None = None  # the subjects' keys (to seal an export): the service gives them

    async def init(self) -> None:
        await self.budgets.create_index([("partnership_id", ASCENDING)])
        await self.db[COMMITMENTS].create_index([("call_id", ASCENDING)])
        await self.ledger_entries.create_index([("call_id", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self.acceptances.create_index([("call_id", ASCENDING)])
        await self.actions.create_index([("action_id", ASCENDING)], unique=True)
        await self.actions.create_index([("call_id", ASCENDING)])
        for party in PARTIES:  # an export finds the subject's exchanges
            await self.facts.create_index([(party, ASCENDING)])

    # --- personal data ------------------------------------------------------------------------

    async def export(self, subject_id: str) -> list[dict]:
        """The facts of the subject's exchanges (the parties, places and dates the money was decided on).
        Commitments, payments and the ledger are the programme's, not the person's: kept out."""
        return await documents_in([(self.facts, {party: subject_id}) for party in PARTIES])

    async def forget(self, subject_id: str) -> Forgotten:
        """Grants holds no contact person: what it keeps of the organisation is the money's record."""
        return Forgotten(removed=[], kept=[Kept(
            what="commitments, agreements, payment orders and the ledger, by organisation id, with its legal name",
            why="the programme's financial records, kept by law (EU Financial Regulation); no contact person")])

    # --- budget envelopes -------------------------------------------------------------------

    async def open_budget(self, budget: Budget, opening: BudgetChange, *, title: str, events: Sequence[Envelope],
                          processed: str | None = None) -> bool:
        """Create a call's budget and post its opening entry; False when the call already has one
        (whose opening entry is posted again, in case its creator stopped in between)."""
        doc = {"_id": budget.call_id, "call_id": budget.call_id, "partnership_id": budget.partnership_id,
               "rule_set_version": budget.rule_set_version, "title": title, **budget.balances,
               "ledger_size": len(opening.entries), LAST_ENTRIES: opening.entries, tally.SEQ: 0, tally.CAUSES: {}}
        try:
            await self.budgets.insert_one(new_document(doc, events=events, processed=processed))
            return True
        except DuplicateKeyError:
            return False

    async def budget(self, call_id: str) -> dict[str, Any] | None:
        """The envelope of a call's budget as stored (metadata, balances, seq, ring)."""
        return await self.budgets.find_one({"_id": call_id}, {"outbox": 0})

    async def view(self, call_id: str) -> dict[str, Any] | None:
        """Metadata and balances of a call's budget."""
        doc = await self.budget(call_id)
        return {k: doc.get(k) for k in (*META, *BALANCES, tally.SEQ)} if doc else None

    async def calls_of(self, partnership_ids: list[str] | None) -> list[str]:
        if partnership_ids is None:
            return [d["_id"] async for d in self.budgets.find({}, {"_id": 1})]
        found = await asyncio.gather(*(self.budgets.find({"partnership_id": p}, {"_id": 1}).to_list()
                                       for p in partnership_ids))
        return [d["_id"] for docs in found for d in docs]

    @staticmethod
    def budget_of(envelope: Mapping[str, Any], operation: Operation, doc: Mapping[str, Any] | None) -> Budget:
        """The domain's budget: the balances, and the one exchange this decision is about."""
        budget = Budget(envelope["call_id"], envelope["partnership_id"], envelope["rule_set_version"],
                        {k: envelope[k] for k in BALANCES}, ledger_size=envelope["ledger_size"])
        if doc and doc.get("record") is not None:
            records = budget.refusals if doc["state"] == REFUSED else budget.commitments
            records[commitment_key(operation.id)] = doc["record"]
        return budget

    # --- the four steps of a change (see the module docstring) ------------------------------

    async def operation(self, operation: Operation) -> dict[str, Any] | None:
        return await self.db[operation.collection].find_one({"_id": operation.id}, {"outbox": 0})

    async def stage(self, operation: Operation, doc: Mapping[str, Any] | None,
                    pending: Mapping[str, Any]) -> dict[str, Any]:
        """1. Keep the decision in the operation's document (replacing an overtaken one)."""
        if doc is None:
            staged = {"_id": operation.id, "call_id": operation.call_id, "state": None, "amount_cents": 0,
                      "record": None, "rev": 1, "pending": dict(pending)}
            await self._insert(operation, new_document(staged))
            return staged
        await self._update(operation, doc, {"$set": {"pending": dict(pending)}})
        return {**doc, "rev": doc["rev"] + 1, "pending": dict(pending)}

    async def charge(self, envelope: Mapping[str, Any], pending: Mapping[str, Any]) -> None:
        """2. Post the budget's last entries, then move its balances if it is still as the
        decision saw it (else LostRace), carrying this change's entries."""
        await self.post(envelope)
        await tally.store(self.budgets, envelope, {"$inc": pending["inc"], "$set": {LAST_ENTRIES: pending["entries"]}},
                          cause=pending["cause"])

    async def post(self, envelope: Mapping[str, Any]) -> None:
        """Append the entries of the budget's last change to the ledger (idempotent by ``_id``)."""
        for entry in envelope.get(LAST_ENTRIES) or ():
            try:
                await self.ledger_entries.insert_one({"_id": entry_id(entry), **entry})
            except DuplicateKeyError:
                pass

    async def finish(self, operation: Operation, doc: Mapping[str, Any] | None, pending: Mapping[str, Any]) -> None:
        """3. The operation's document takes the outcome and its events, and forgets ``pending``."""
        outcome = {"state": pending["state"], "record": pending["record"], "amount_cents": pending["amount_cents"]}
        events = [Envelope.from_outbox(e) for e in pending["events"]]
        if doc is None:
            done = {"_id": operation.id, "call_id": operation.call_id, **outcome, "rev": 1, "pending": None}
            await self._insert(operation, new_document(done, events=events, processed=pending["cause"]))
            return
        try:
            await self._update(operation, doc, with_events({"$set": {**outcome, "pending": None}}, events=events,
                                                           processed=pending["cause"]))
        except LostRace:
            now = await self.operation(operation)
            if not now or pending["cause"] not in now["processed"]:
                raise  # else whoever resumed this change has finished it already

    async def charged(self, envelope: Mapping[str, Any], pending: Mapping[str, Any]) -> bool | None:
        """Whether the budget took a pending change: True, False (it never can: decide again) or
        None (not yet, and it still can: the budget has not moved since the decision)."""
        try:
            return tally.landed(envelope, pending["budget_seq"], pending["cause"])
        except tally.Forgotten:  # the change made at that seq was posted before the next one; was it this?
            first = pending["entries"][0]
            return await self.ledger_entries.find_one({"_id": entry_id(first)}, {"_id": 0}) == first

    async def _insert(self, operation: Operation, doc: Mapping[str, Any]) -> None:
        try:
            await self.db[operation.collection].insert_one(dict(doc))
        except DuplicateKeyError:
            raise LostRace(f"{operation.collection} {operation.id} was created meanwhile") from None

    async def _update(self, operation: Operation, doc: Mapping[str, Any], update: Mapping[str, Any]) -> None:
        full = {op: dict(fields) for op, fields in update.items()}
        full.setdefault("$set", {})["rev"] = doc["rev"] + 1
        result = await self.db[operation.collection].update_one({"_id": operation.id, "rev": doc["rev"]}, full)
        if result.matched_count != 1:
            raise LostRace(f"{operation.collection} {operation.id} moved past rev {doc['rev']}")

    # --- commitments and the ledger (reads) -------------------------------------------------

    async def commitment(self, application_id: str) -> dict[str, Any] | None:
        """An exchange's outcome document (its commitment or refusal), if any."""
        return await self.operation(Operation(COMMITMENTS, application_id, ""))

    async def commitments(self, call_id: str) -> list[dict[str, Any]]:
        """The commitment records of a call (a report: by its indexed call id)."""
        docs = self.db[COMMITMENTS].find({"call_id": call_id}, {"state": 1, "record": 1})
        return [d["record"] async for d in docs if d.get("record") is not None and d["state"] != REFUSED]

    async def ledger(self, call_id: str, after_seq: int = 0,
                     limit: int | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The call's ledger entries in order after `after_seq` (at most `limit`; all without one,
        for the reconciliation's replay), and the balances its budget records."""
        envelope = await self.budget(call_id)
        if envelope:
            await self.post(envelope)  # the last change's entries, still only in the budget
        found = self.ledger_entries.find({"call_id": call_id, "seq": {"$gt": after_seq}}, {"_id": 0}).sort(
            "seq", ASCENDING)
        entries = await (found.limit(limit) if limit else found).to_list()
        return entries, {k: envelope[k] for k in BALANCES} if envelope else dict.fromkeys(BALANCES, 0)

    # --- four eyes: actions awaiting a second officer --------------------------------------

    async def action(self, slot: str) -> dict[str, Any] | None:
        return await self.actions.find_one({"_id": slot}, HIDDEN)

    async def action_by_id(self, action_id: str) -> dict[str, Any] | None:
        return await self.actions.find_one({"action_id": action_id}, HIDDEN)

    async def actions_of(self, call_id: str, limit: int) -> list[dict[str, Any]]:
        """A call's latest action per slot, newest first (bounded)."""
        found = self.actions.find({"call_id": call_id}, HIDDEN).sort("initiated_at", -1).limit(limit)
        return [strip(d) for d in await found.to_list()]

    async def put_action(self, slot: str, current: Mapping[str, Any] | None, action: Mapping[str, Any],
                         events: Sequence[Envelope]) -> None:
        """Keep a new action in its slot (the one before it decided or expired), with its events;
        LostRace when another initiation or decision came first."""
        if current is None:
            try:
                await self.actions.insert_one(new_document({"_id": slot, **action, "rev": 1}, events=events))
            except DuplicateKeyError:
                raise LostRace(f"action {slot} was initiated meanwhile") from None
            return
        update = with_events({"$set": {**action, "rev": current["rev"] + 1}, "$unset": dict.fromkeys(DECISION, "")},
                             events=events)
        if (await self.actions.update_one({"_id": slot, "rev": current["rev"]}, update)).matched_count != 1:
            raise LostRace(f"action {slot} moved past rev {current['rev']}")

    async def decide_action(self, current: Mapping[str, Any], decided: Mapping[str, Any],
                            events: Sequence[Envelope]) -> bool:
        """Verify or reject a pending action, once: False when someone else decided it first."""
        update = with_events({"$set": {**{k: v for k, v in decided.items() if k != "_id"}, "rev": current["rev"] + 1}},
                             events=events)
        result = await self.actions.update_one({"_id": current["_id"], "rev": current["rev"], "status": "pending"},
                                               update)
        return result.matched_count == 1

    # --- accepted reports (applications' report.accepted) -----------------------------------

    async def record_report(self, application_id: str, call_id: str, report: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.reports, {"_id": application_id, "call_id": call_id, **report})

    async def report(self, application_id: str) -> dict[str, Any] | None:
        return await self.reports.find_one({"_id": application_id})

    # --- calls seen in CallPublished ---------------------------------------------------------

    async def record_call(self, call_id: str, partnership_id: str, title: str, event_id: str) -> bool:
        return await self._insert_once(self.calls, {"_id": call_id, "partnership_id": partnership_id, "title": title,
                                                    "event_id": event_id})

    async def call(self, call_id: str) -> dict[str, Any] | None:
        return await self.calls.find_one({"_id": call_id})

    async def retitle_call(self, call_id: str, title: str, revision: int) -> None:
        """The call's title as of `revision` (a change before it opened); an older one changes nothing."""
        newer = {"$or": [{"call_revision": {"$lt": revision}}, {"call_revision": {"$exists": False}}]}
        update = {"$set": {"title": title, "call_revision": revision}}
        await self.calls.update_one({"_id": call_id, **newer}, update)
        await self.budgets.update_one({"_id": call_id, **newer}, update)

    # --- exchanges: insert-only facts --------------------------------------------------------

    async def _insert_once(self, collection, doc: Mapping[str, Any]) -> bool:
        try:
            await collection.insert_one(dict(doc))
            return True
        except DuplicateKeyError:
            return False  # the first fact stands; a redelivery changes nothing

    async def record_facts(self, application_id: str, call_id: str, facts: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.facts, {"_id": application_id, "call_id": call_id, **facts})

    async def record_approval(self, application_id: str, call_id: str, approval: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.approvals, {"_id": application_id, "call_id": call_id, **approval})

    async def record_acceptance(self, application_id: str, call_id: str, acceptance: Mapping[str, Any]) -> bool:
        return await self._insert_once(self.acceptances, {"_id": application_id, "call_id": call_id, **acceptance})

    async def renew_acceptance(self, application_id: str, call_id: str, acceptance: Mapping[str, Any]) -> None:
        """The host's acceptance again, after a refused grant: the latest one is decided on."""
        await self.acceptances.replace_one({"_id": application_id}, {"call_id": call_id, **acceptance})

    async def record_withdrawal(self, application_id: str, call_id: str, reason: str, event_id: str,
                                at: datetime) -> bool:
        return await self._insert_once(self.withdrawals, {"_id": application_id, "call_id": call_id, "reason": reason,
                                                          "event_id": event_id, "at": at})

    async def withdrawal(self, application_id: str) -> dict[str, Any] | None:
        return await self.withdrawals.find_one({"_id": application_id})

    async def exchange(self, application_id: str) -> dict[str, Any]:
        """What is known of an exchange: facts, approval, acceptance, withdrawal (each may be None)."""
        facts, approval, acceptance, withdrawal = await asyncio.gather(
            self.facts.find_one({"_id": application_id}), self.approvals.find_one({"_id": application_id}),
            self.acceptances.find_one({"_id": application_id}), self.withdrawal(application_id))
        return {"facts": facts, "approval": approval, "acceptance": acceptance, "withdrawal": withdrawal}

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


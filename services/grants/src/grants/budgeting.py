"""Changing a call's budget, the one way: load the budget and the one document the change is
about, decide (pure domain), store it in four steps (storage.py says why in that order);
load and decide again on a lost race (``cx_shared.races.until_stored``).

Within a process one writer per call at a time: writers of one process racing for the same
budget would only make each other lose its compare-and-set. Other replicas still race, and
the budget's ``seq`` settles that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.races import LostRace, Turns, until_stored

from grants.domain import Budget, BudgetChange
from grants.storage import COMMITMENTS, TOP_UPS, Operation, Storage, plan

Decide = Callable[[Budget], BudgetChange | None]
Wrap = Callable[[BudgetChange], list[Envelope]]
Outcome = tuple[str, dict[str, Any] | None]  # the state after the change, and the exchange's record

_writers = Turns()


async def act_on_exchange(storage: Storage, call_id: str, application_id: str, decide: Decide, wrap: Wrap, *,
                          cause: str) -> Outcome | None:
    """Apply a decision about one exchange of the call; None when nothing changed: no budget,
    ``cause`` already applied to this exchange, or a decision that changes nothing."""
    return await _act(storage, Operation(COMMITMENTS, application_id, call_id), decide, wrap, cause)


async def act_on_budget(storage: Storage, call_id: str, key: str, decide: Decide, wrap: Wrap, *,
                        cause: str) -> Outcome | None:
    """Apply a decision about the budget alone (a top-up), once per ``key``."""
    return await _act(storage, Operation(TOP_UPS, f"{call_id}:{key}", call_id), decide, wrap, cause)


async def _act(storage: Storage, operation: Operation, decide: Decide, wrap: Wrap, cause: str) -> Outcome | None:
    async def step() -> Outcome | None:
        key = (id(storage), operation.call_id)  # per storage: a process has one; a test, one per simulated replica
        async with _writers.of(key):
            envelope, doc = await asyncio.gather(storage.budget(operation.call_id), storage.operation(operation))
            if envelope is None or (doc is not None and cause in doc["processed"]):
                return None
            pending = (doc or {}).get("pending")
            charged = await storage.charged(envelope, pending) if pending else False
            if charged is False:  # nothing staged, or overtaken: decide (again)
                change = decide(storage.budget_of(envelope, operation, doc))
                if change is None:
                    return None
                pending = plan(envelope, change, wrap(change), cause)
                if not pending["inc"]:  # no money moves (a refusal): the outcome alone, one write
                    await storage.finish(operation, doc, pending)
                    return pending["state"], pending["record"]
                doc = await storage.stage(operation, doc, pending)
            if not charged:  # just staged, or staged by a delivery that stopped before the budget moved
                await storage.charge(envelope, pending)
        await storage.finish(operation, doc, pending)
        if pending["cause"] != cause:
            raise LostRace(f"finished {pending['cause']} first; now deciding {cause}")
        return pending["state"], pending["record"]

    return await until_stored(step, what=f"budget of call {operation.call_id}")

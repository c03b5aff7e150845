"""`python -m grants.rebuild [--drop]`: budgets, commitments and the ledger rebuilt from the
topics grants consumes and from its own topic (cx_shared.rebuild).

What HTTP requests changed (an agreement accepted, a balance verified and the payment or
reduction it ordered, a grant's cancellation verified, a top-up verified) comes back from our own events: the
first event of a request records it (no causation, its id the change's cause, its time the
change's: cx_shared.envelope.as_request) and carries who made it; the change is made again from
it through the same domain function, under the same cause, at the same time, by the same actor,
so the ledger and the exchange's document are those of the live service. Every other event of
our own (caused by an event, or following a request's first one) is made again by its cause, and
skipped. Not replayed: a budget opened by hand (call.published opens every call's budget first;
opening one by hand succeeds only when that opening failed half-way), a verified balance that
ordered nothing and reduced nothing (no event records it), and the four-eyes actions still
awaiting verification (initiate them again; those decided are in their events).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cx_shared.consumer import Delivery
from cx_shared.errors import Problem
from cx_shared.events import Event
from cx_shared.events.grants import (BudgetToppedUp, CommitmentReduced, CommitmentReleased, GrantAgreementAccepted,
                                     PaymentOrdered)
from cx_shared.logging import get_logger
from cx_shared.lump_sum_rules import rule_set
from cx_shared.rebuild import Replay, main

from grants import domain
from grants.budgeting import act_on_budget, act_on_exchange
from grants.domain import Budget, Cause
from grants.handlers import HANDLERS, delivery_wrap
from grants.settings import Settings
from grants.storage import OUTBOX_COLLECTIONS, Storage
from grants.use_cases import release

log = get_logger(__name__)


def request_cause(delivery: Delivery, actor: str | None) -> Cause:
    """The cause the request stamped its change with: its actor, its time, its correlation id."""
    e = delivery.envelope
    return Cause(actor=actor or "", at=e.time, request_id=e.correlationid)


def visitor_of(budget: Budget, application_id: str) -> str | None:
    record = budget.commitments.get(domain.commitment_key(application_id))
    return record["parties"]["visitor_organisation_id"] if record else None


async def agreement_accepted(e: GrantAgreementAccepted, delivery: Delivery, storage: Storage) -> None:
    cause = request_cause(delivery, e.accepted_by)
    await act_on_exchange(storage, e.call_id, e.application_id,
                          lambda b: domain.accept_agreement(b, e.application_id, visitor_of(b, e.application_id),
                                                            cause),
                          delivery_wrap(delivery), cause=delivery.event_id)


async def report_accepted(e: CommitmentReduced | PaymentOrdered, delivery: Delivery, storage: Storage) -> None:
    """A report accepted by hand: its first event (a reduction, else the balance) names the figures."""
    if e.actual_working_days is None:
        return  # an older event: the figures are not known
    budget = await storage.view(e.call_id)
    rules, cause = rule_set(budget["rule_set_version"]), request_cause(delivery, e.accepted_by)
    await act_on_exchange(storage, e.call_id, e.application_id,
                          lambda b: domain.accept_report(b, e.application_id, e.actual_working_days, rules, cause,
                                                         e.verified_by),
                          delivery_wrap(delivery), cause=delivery.event_id)


async def grant_cancelled(e: CommitmentReleased, delivery: Delivery, storage: Storage) -> None:
    await release(storage, e.call_id, e.application_id, e.reason, request_cause(delivery, e.released_by),
                  delivery_wrap(delivery), event_id=delivery.event_id, by_hand=True, verified_by=e.verified_by)


async def topped_up(e: BudgetToppedUp, delivery: Delivery, storage: Storage) -> None:
    if e.idempotency_key is None:
        return  # an older event: the key it was kept under is not known
    cause = request_cause(delivery, e.topped_up_by)
    await act_on_budget(storage, e.call_id, e.idempotency_key,
                        lambda b: domain.top_up(b, e.amount_cents, cause, e.reason, e.idempotency_key,
                                                e.verified_by),
                        delivery_wrap(delivery), cause=f"top-up:{e.idempotency_key}")


REQUESTS: dict[type[Event], Callable[..., Awaitable[None]]] = {
    GrantAgreementAccepted: agreement_accepted, CommitmentReduced: report_accepted, PaymentOrdered: report_accepted,
    CommitmentReleased: grant_cancelled, BudgetToppedUp: topped_up,
}


async def on_own_event(event: Event, delivery: Delivery, storage: Storage) -> None:
    """Make the request this event records again, once (its id, or a top-up's key, is the cause)."""
    if delivery.envelope.causationid is not None:
        return
    try:
        await REQUESTS[type(event)](event, delivery, storage)
    except Problem as refused:  # the budget differs from the live one: say so, go on
        log.warning("a recorded request could not be made again", event_id=delivery.event_id,
                    type=delivery.envelope.type, reason=str(refused))


REPLAYED = {**HANDLERS, **{cls: on_own_event for cls in REQUESTS}}
REPLAY = Replay(Settings, REPLAYED, Storage, OUTBOX_COLLECTIONS)

if __name__ == "__main__":
    main(REPLAY)

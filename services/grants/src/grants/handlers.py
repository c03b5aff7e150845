"""Event handlers: one table, thin functions (event -> domain -> storage).

An exchange is granted once three facts have arrived, in whatever order the topics deliver
them: the call's budget (CallPublished), the exchange's facts (ApplicationSubmitted) and the
host's acceptance (HostAccepted). Each handler records its fact and then tries to settle
the exchange; the last fact to arrive triggers the commitment or the refusal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events import Event
from cx_shared.errors import Conflict, Invalid, NotFound
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmitted, ApplicationWithdrawn,
                                           CallPublished, ExchangeNoShow, ReportAccepted)
from cx_shared.events.assessment import HostAccepted, HostDeclined
from cx_shared.events.grants import BudgetOpened, PaymentConfirmed
from cx_shared.logging import get_logger

from grants import domain
from grants.agreement import agreement_path, render_agreement, render_from_commitment, sha256
from grants.domain import Cause, Parties
from grants.lump_sums import Location, LumpSum, LumpSumError, compute_lump_sum, prefinancing_cents
from cx_shared.geography import UnknownCity, locate
from grants.rules import UnknownRuleSet, rule_set
from grants.storage import Storage

log = get_logger(__name__)


def cause_of(delivery: Delivery) -> Cause:
    e = delivery.envelope
    return Cause(actor=e.source, at=datetime.now(UTC), event_id=e.id, event_type=e.type)


def wrapper(delivery_source: str, correlation_id: str, causation_id: str):
    """Wraps a change's events in envelopes caused by one event, keyed by exchange (or call)."""
    def wrap(events: list[Event]) -> list[Envelope]:
        return [Envelope.wrap(ev, source=delivery_source, subject=subject_of(ev), correlation_id=correlation_id,
                              causation_id=causation_id) for ev in events]
    return wrap


def subject_of(event: Event) -> str:
    return getattr(event, "application_id", None) or event.call_id  # type: ignore[attr-defined]


def delivery_wrap(delivery: Delivery):
    wrap = wrapper(delivery.source, delivery.envelope.correlationid, delivery.event_id)
    return lambda change: wrap(change.events)


async def on_call_published(event: CallPublished, delivery: Delivery, storage: Storage) -> None:
    cause = cause_of(delivery)
    budget, opening = domain.opening(event.call_id, event.partnership_id, event.budget_cents,
                                     event.lump_sum_rule_set, cause, f"budget of call {event.call_id!r} published")
    opened = BudgetOpened(call_id=event.call_id, partnership_id=event.partnership_id,
                          budget_cents=event.budget_cents, rule_set_version=event.lump_sum_rule_set)
    if not await storage.open_budget(budget, opening, title=event.title, events=[delivery.emit(opened, event.call_id)],
                                     processed=delivery.event_id):
        log.info("call already has a budget", call_id=event.call_id)
    for application_id in await storage.accepted_exchanges(event.call_id):
        await settle_exchange(storage, application_id, delivery.source)


async def on_application_submitted(event: ApplicationSubmitted, delivery: Delivery, storage: Storage) -> None:
    v, h = event.visitor, event.host
    facts: dict[str, Any] = {
        "partnership_id": event.partnership_id,
        "parties": Parties(v.organisation_id, v.legal_name, v.country, h.organisation_id, h.legal_name,
                           h.country).__dict__,
        "working_days": event.working_days, "travel_mode": event.travel_mode.value,
        "planned_start": event.planned_start.isoformat(), "planned_end": event.planned_end.isoformat(),
        "submitted_at": event.submitted_at, "event_id": delivery.event_id}
    try:  # resolve the cities now: an unknown one is known (and logged) before any money is at stake
        facts["locations"] = [locate(p.city, p.country).__dict__ for p in (v, h)]
        facts["location_error"] = None
    except UnknownCity as exc:
        facts["location_error"] = str(exc)
        log.warning("exchange with an unknown city", application_id=event.application_id, error=str(exc))
    await storage.record_facts(event.application_id, event.call_id, facts)
    await settle_exchange(storage, event.application_id, delivery.source)


async def on_host_accepted(event: HostAccepted, delivery: Delivery, storage: Storage) -> None:
    e = delivery.envelope
    await storage.record_acceptance(event.application_id, event.call_id, {
        "event_id": e.id, "event_type": e.type, "source": e.source, "correlation_id": e.correlationid,
        "host_id": event.host_id})
    await settle_exchange(storage, event.application_id, delivery.source)


async def settle_exchange(storage: Storage, application_id: str, source: str) -> None:
    """Commit the lump sum or refuse the grant once the facts, the acceptance and the budget
    are all there; the last of them to arrive triggers it. Safe to run any number of times."""
    ex = await storage.exchange(application_id)
    facts, accepted = ex["facts"], ex["acceptance"]
    if facts is None or accepted is None:
        return
    call_id = accepted["call_id"]
    found = await storage.state(call_id)
    if found is None:
        return  # waits for CallPublished, which settles the call's accepted exchanges
    budget, _, meta = found
    rules_version = meta["rule_set_version"]
    wrap = wrapper(source, accepted["correlation_id"], accepted["event_id"])
    wrap_change = lambda change: wrap(change.events)  # noqa: E731
    cause = Cause(actor=accepted["source"], at=datetime.now(UTC), event_id=accepted["event_id"],
                  event_type=accepted["event_type"])
    if not domain.decided(budget, application_id):
        if ex["withdrawal"]:
            return  # withdrawn (or declined) before any grant: nothing to commit
        try:
            rules = rule_set(rules_version)
            lump_sum = lump_sum_of(facts, rules)
        except (LumpSumError, UnknownRuleSet) as exc:
            reason = str(exc)
            await storage.update_budget(call_id, lambda b: domain.refuse(b, application_id, reason, cause),
                                        wrap_change)
            log.info("grant refused", application_id=application_id, reason=reason)
            return
        exchange = {k: facts[k] for k in ("planned_start", "planned_end", "working_days", "travel_mode")}
        document = render_agreement(application_id=application_id, call_id=call_id, parties=facts["parties"],
                                    exchange=exchange, lump_sum=lump_sum.as_record(),
                                    prefinancing_cents=prefinancing_cents(rules, lump_sum.total_cents),
                                    rules=rules, issued_at=cause.at)
        digest = sha256(document)
        change = await storage.update_budget(
            call_id, lambda b: domain.commit(b, application_id, Parties(**facts["parties"]), lump_sum, rules, cause,
                                             digest, agreement_path(application_id), exchange), wrap_change)
        if change is not None and change.commitments:
            log.info("grant committed", application_id=application_id, total_cents=lump_sum.total_cents)
            await storage.save_agreement(application_id, call_id, document, digest)
        elif change is not None:
            log.info("grant refused", application_id=application_id, reason=change.events[0].reason)
    # Committed now or earlier (perhaps by a delivery that stopped half-way): finish the work.
    await ensure_agreement(storage, application_id)
    withdrawal = (await storage.exchange(application_id))["withdrawal"]
    if withdrawal:  # withdrawn while we were committing: the withdrawal may have found no commitment yet
        await storage.update_budget(call_id, lambda b: domain.release(b, application_id, cause, withdrawal["reason"]),
                                    wrap_change)


async def ensure_agreement(storage: Storage, application_id: str) -> bytes | None:
    """The stored agreement PDF, rendered again from the commitment if it was never stored."""
    document = await storage.agreement_document(application_id)
    if document is not None:
        return document
    call_id = await storage.call_of_exchange(application_id)
    found = await storage.state(call_id) if call_id else None
    if found is None:
        return None
    budget, _, meta = found
    record = budget.commitments[domain.commitment_key(application_id)]
    document = render_from_commitment(record, rule_set(meta["rule_set_version"]))
    await storage.save_agreement(application_id, call_id, document, sha256(document))
    return document


def lump_sum_of(facts: dict[str, Any], rules) -> LumpSum:
    if facts.get("location_error"):
        raise LumpSumError(facts["location_error"])
    origin, destination = (Location(p["name"], p["country"], p["latitude"], p["longitude"])
                           for p in facts["locations"])
    return compute_lump_sum(rules, origin, destination, facts["working_days"], facts["travel_mode"])


Releasing = ApplicationWithdrawn | ApplicationCancelled | HostDeclined | ExchangeNoShow


async def release(event: Releasing, delivery: Delivery, storage: Storage, reason: str) -> None:
    # Recorded first, so an exchange still waiting for its budget is never committed afterwards
    # and a commitment racing with this withdrawal sees it (settle_exchange checks after committing).
    await storage.record_withdrawal(event.application_id, event.call_id, reason)
    cause = cause_of(delivery)
    await storage.update_budget(event.call_id, lambda b: domain.release(b, event.application_id, cause, reason),
                                delivery_wrap(delivery), processed=delivery.event_id)


async def on_application_withdrawn(event: ApplicationWithdrawn, delivery: Delivery, storage: Storage) -> None:
    await release(event, delivery, storage, f"application withdrawn{': ' + event.reason if event.reason else ''}")


async def on_application_cancelled(event: ApplicationCancelled, delivery: Delivery, storage: Storage) -> None:
    await release(event, delivery, storage, f"exchange cancelled: {event.reason}")


async def on_host_declined(event: HostDeclined, delivery: Delivery, storage: Storage) -> None:
    await release(event, delivery, storage, f"host declined: {event.reason}")


async def on_exchange_no_show(event: ExchangeNoShow, delivery: Delivery, storage: Storage) -> None:
    await release(event, delivery, storage, "the visitor never came" + (f": {event.reason}" if event.reason else ""))


async def on_report_accepted(event: ReportAccepted, delivery: Delivery, storage: Storage) -> None:
    """The partnership accepted the report: order the balance from the actual working days
    (reduced by the rule set's recomputation when shorter than planned). The API's
    report-acceptance does the same for an officer acting by hand; whichever comes first wins."""
    found = await storage.state(event.call_id)
    if found is None:
        log.warning("report accepted for a call without a budget", call_id=event.call_id)
        return
    rules = rule_set(found[2]["rule_set_version"])
    cause = cause_of(delivery)
    try:
        await storage.update_budget(
            event.call_id,
            lambda b: domain.accept_report(b, event.application_id, event.actual_working_days, rules, cause),
            delivery_wrap(delivery), processed=delivery.event_id)
    except (Conflict, NotFound, Invalid) as refused:  # no open commitment, or already accepted by hand
        log.info("report acceptance changes nothing", application_id=event.application_id, reason=refused.detail)


async def on_payment_confirmed(event: PaymentConfirmed, delivery: Delivery, storage: Storage) -> None:
    cause = cause_of(delivery)
    result = await storage.update_budget(
        event.call_id,
        lambda b: domain.confirm_payment(b, event.application_id, event.payment_id, event.finance_reference, cause),
        delivery_wrap(delivery), processed=delivery.event_id)
    if result is None:
        log.info("payment confirmation with no open order (duplicate or unknown)", payment_id=event.payment_id)


HANDLERS = {
    CallPublished: on_call_published,
    ApplicationSubmitted: on_application_submitted,
    HostAccepted: on_host_accepted,
    HostDeclined: on_host_declined,
    ApplicationWithdrawn: on_application_withdrawn,
    ApplicationCancelled: on_application_cancelled,
    PaymentConfirmed: on_payment_confirmed,
    ExchangeNoShow: on_exchange_no_show,
    ReportAccepted: on_report_accepted,
}

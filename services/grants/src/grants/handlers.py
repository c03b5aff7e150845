"""Event handlers: one table, thin functions (event -> use case -> storage).

The four facts an exchange needs (budget, facts, assessment's approval, the host's acceptance)
may arrive in any order: each handler records its fact and then settles the exchange
(use_cases.settle_exchange).
"""

from __future__ import annotations

from typing import Any

from cx_shared.consumer import Delivery
from cx_shared.errors import Conflict, Forbidden, Invalid, NotFound
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmitted, ApplicationWithdrawn,
                                           ApplicationSubmittedV2, CallPublished, CallUpdated, ExchangeNoShow,
                                           PersonalDataErased, PersonalDataExportRequested, ReportAccepted)
from cx_shared.events.assessment import ApplicationApproved, HostAccepted, HostDeclined
from cx_shared.events.grants import BudgetOpened, GrantsErasureReported, GrantsExported, PaymentConfirmed
from cx_shared.geography import UnknownCity, locate
from cx_shared.logging import get_logger
from cx_shared.personal_data.erasure import erase
from cx_shared.personal_data.export import answer

from grants import domain
from grants.budgeting import act_on_budget, act_on_exchange
from grants.domain import Cause, Parties
from grants.storage import REFUSED, Storage
from grants.use_cases import initiate_balance, release, settle_exchange, wrapper

log = get_logger(__name__)


def cause_of(delivery: Delivery) -> Cause:
    """At the event's time, not ours: a rebuild then writes the same ledger and agreement."""
    e = delivery.envelope
    return Cause(actor=e.source, at=e.time, event_id=e.id, event_type=e.type)


def delivery_wrap(delivery: Delivery):
    return wrapper(delivery.source, delivery.envelope.correlationid, delivery.event_id)


async def on_call_published(event: CallPublished, delivery: Delivery, storage: Storage) -> None:
    # Known before its budget is opened: only a call seen here may get a budget by hand too.
    await storage.record_call(event.call_id, event.partnership_id, event.title, delivery.event_id)
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


async def on_call_updated(event: CallUpdated, delivery: Delivery, storage: Storage) -> None:
    """The call changed before it opened: its title, and its budget by the change (once per revision)."""
    await storage.retitle_call(event.call_id, event.title, event.revision)
    cause = cause_of(delivery)
    await act_on_budget(storage, event.call_id, f"call-revision-{event.revision}",
                        lambda b: domain.call_budget_changed(b, event.budget_change_cents, event.revision, cause),
                        delivery_wrap(delivery), cause=delivery.event_id)


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


def origin(delivery: Delivery) -> dict[str, Any]:
    """What a recorded fact keeps of the event that brought it (a commitment's cause is its acceptance)."""
    e = delivery.envelope
    return {"event_id": e.id, "event_type": e.type, "source": e.source, "correlation_id": e.correlationid,
            "time": e.time}


async def on_application_approved(event: ApplicationApproved, delivery: Delivery, storage: Storage) -> None:
    """Money is committed only for an application assessment approved: a host acceptance that
    came first waits for this."""
    await storage.record_approval(event.application_id, event.call_id, origin(delivery))
    await settle_exchange(storage, event.application_id, delivery.source)


async def on_host_accepted(event: HostAccepted, delivery: Delivery, storage: Storage) -> None:
    """A second acceptance (assessment promoted the application after a refused grant) replaces
    the first, so the grant is decided again; a redelivered one changes nothing."""
    acceptance = {**origin(delivery), "host_id": event.host_id}
    if not await storage.record_acceptance(event.application_id, event.call_id, acceptance):
        outcome = await storage.commitment(event.application_id)
        if outcome is not None and outcome["state"] == REFUSED and delivery.event_id not in outcome["processed"]:
            await storage.renew_acceptance(event.application_id, event.call_id, acceptance)
    await settle_exchange(storage, event.application_id, delivery.source)


Releasing = ApplicationWithdrawn | ApplicationCancelled | HostDeclined | ExchangeNoShow


async def release_exchange(event: Releasing, delivery: Delivery, storage: Storage, reason: str) -> None:
    # Recorded first, so an exchange still waiting for its budget is never committed afterwards
    # and a commitment racing with this withdrawal sees it (settle_exchange checks after committing).
    await storage.record_withdrawal(event.application_id, event.call_id, reason, delivery.event_id,
                                    delivery.envelope.time)
    await release(storage, event.call_id, event.application_id, reason, cause_of(delivery), delivery_wrap(delivery),
                  event_id=delivery.event_id)


async def on_application_withdrawn(event: ApplicationWithdrawn, delivery: Delivery, storage: Storage) -> None:
    reason = f"application withdrawn{': ' + event.reason if event.reason else ''}"
    await release_exchange(event, delivery, storage, reason)


async def on_application_cancelled(event: ApplicationCancelled, delivery: Delivery, storage: Storage) -> None:
    await release_exchange(event, delivery, storage, f"exchange cancelled: {event.reason}")


async def on_host_declined(event: HostDeclined, delivery: Delivery, storage: Storage) -> None:
    await release_exchange(event, delivery, storage, f"host declined: {event.reason}")


async def on_exchange_no_show(event: ExchangeNoShow, delivery: Delivery, storage: Storage) -> None:
    reason = "the visitor never came" + (f": {event.reason}" if event.reason else "")
    await release_exchange(event, delivery, storage, reason)


async def on_report_accepted(event: ReportAccepted, delivery: Delivery, storage: Storage) -> None:
    """The partnership's review accepted the report: keep its figures and initiate the balance
    payment in the reviewer's name; another officer of the partnership verifies it (four eyes)
    and only then is the balance ordered (use_cases.initiate_balance)."""
    report = {"accepted_by": event.accepted_by, "actual_start": event.actual_start.isoformat(),
              "actual_end": event.actual_end.isoformat(), "actual_working_days": event.actual_working_days,
              "planned_working_days": event.planned_working_days, "event_id": delivery.event_id}
    await storage.record_report(event.application_id, event.call_id, report)
    try:
        await initiate_balance(storage, event.application_id, event.accepted_by, delivery.envelope.time,
                               action_id=f"act-{delivery.event_id}", wrap=delivery_wrap(delivery))
    except (Conflict, NotFound, Invalid, Forbidden) as refused:  # no open commitment, already paid, pending...
        log.info("report acceptance initiates no balance", application_id=event.application_id,
                 reason=refused.detail)


async def on_payment_confirmed(event: PaymentConfirmed, delivery: Delivery, storage: Storage) -> None:
    outcome = await storage.commitment(event.application_id)
    if outcome is not None and outcome["call_id"] != event.call_id:
        # A confirmation of call Y must never settle money on X (nor Y's on X's exchange).
        log.error("payment confirmation refused: call_id is not the commitment's call", payment_id=event.payment_id,
                  field="call_id", call_id=event.call_id, commitment_call_id=outcome["call_id"])
        return
    cause = cause_of(delivery)
    result = await act_on_exchange(
        storage, event.call_id, event.application_id,
        lambda b: domain.confirm_payment(b, event.application_id, event.payment_id, event.finance_reference, cause,
                                         event.call_id),
        delivery_wrap(delivery), cause=delivery.event_id)
    if result is None:
        log.info("payment confirmation with no open order (duplicate or unknown)", payment_id=event.payment_id)


async def on_personal_data_erased(event: PersonalDataErased, delivery: Delivery, storage: Storage) -> None:
    await erase(event, delivery, storage.tombstones, storage.forget, GrantsErasureReported)


async def on_export_requested(event: PersonalDataExportRequested, delivery: Delivery, storage: Storage) -> None:
    await answer(event, delivery, storage.db, storage.keys, storage.export, GrantsExported)


# Grants keeps no contact person (the parties' ids, legal names and places only), so no event
# needs the erasure guard here.
HANDLERS = {
    CallPublished: on_call_published,
    CallUpdated: on_call_updated,
    ApplicationSubmitted: on_application_submitted,
    ApplicationSubmittedV2: on_application_submitted,
    ApplicationApproved: on_application_approved,
    HostAccepted: on_host_accepted,
    HostDeclined: on_host_declined,
    ApplicationWithdrawn: on_application_withdrawn,
    ApplicationCancelled: on_application_cancelled,
    PaymentConfirmed: on_payment_confirmed,
    ExchangeNoShow: on_exchange_no_show,
    ReportAccepted: on_report_accepted,
    PersonalDataErased: on_personal_data_erased,
    PersonalDataExportRequested: on_export_requested,
}

"""Events in, in one table: each handler translates an event into a call-book action."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmitted, ApplicationWithdrawn,
                                           CallPublished, CallUpdated, OfferPublished, OfferUpdated,
                                           OrganisationEnrolled, OrganisationUpdated, PersonalDataErased,
                                           ApplicationSubmittedV2, OrganisationEnrolledV2, OrganisationUpdatedV2,
                                           PersonalDataExportRequested)
from cx_shared.events.assessment import AssessmentErasureReported, AssessmentExported
from cx_shared.events.grants import (BudgetToppedUp, CommitmentReduced, CommitmentReleased, GrantRefused,
                                     PaymentOrdered)
from cx_shared.logging import get_logger
from cx_shared.lump_sums import LumpSumError, exchange_lump_sum
from cx_shared.personal_data.erasure import erase
from cx_shared.personal_data.export import answer

from assessment.domain import WAITLISTED, CallBook
from assessment.rules import Candidate, Party
from assessment.storage import Storage
from assessment.workflow import CallMissing, Needs, act_on_call, admit

log = get_logger(__name__)


def candidate_of(event: ApplicationSubmitted) -> Candidate:
    def party(p) -> Party:
        return Party(p.organisation_id, p.country, str(p.organisation_type), p.cluster_name)
    return Candidate(event.application_id, party(event.visitor), party(event.host), event.planned_start,
                     event.planned_end, event.working_days, event.submitted_at.date(), event.offer_id,
                     submitted_at=event.submitted_at)


def price_of(event: ApplicationSubmitted):
    """The exchange's lump sum by a rule set: what grants will commit for these very facts."""
    def price(rule_set_version: str) -> int | LumpSumError:
        try:
            return exchange_lump_sum(rule_set_version, (event.visitor.city, event.visitor.country),
                                     (event.host.city, event.host.country), event.working_days,
                                     event.travel_mode).total_cents
        except LumpSumError as exc:
            return exc
    return price


async def admission(event: ApplicationSubmitted, storage: Storage, wrap, cause: str) -> None:
    candidate = candidate_of(event)
    if event.offer_id:  # the host's published places on the offer, for the host_capacity rule
        candidate = replace(candidate, offer_capacity=await storage.offer_capacity(event.offer_id))
    await admit(storage, event.call_id, candidate, price_of(event), wrap, processed=cause)


def caused_by(delivery: Delivery):
    return lambda event, subject: delivery.emit(event, subject=subject)


async def on_call_published(event: CallPublished, delivery: Delivery, storage: Storage) -> None:
    book = CallBook.open(event.call_id, event.partnership_id, event.opens_on, event.closes_on, event.budget_cents,
                         event.assessment_mode, event.eligible_countries, event.eligibility_rule_set,
                         event.lump_sum_rule_set, event.exchanges_end_on, event.revision)
    await storage.open_call(book)
    # Applications (and top-ups) that arrived before their call (another partition or topic)
    # are taken now, in the order they arrived, each caused by its own event (so once).
    for doc in await storage.submissions_of_call(event.call_id):
        submitted = ApplicationSubmitted.model_validate(doc["data"])
        await admission(submitted, storage, in_its_correlation(delivery, doc), doc["event_id"])
    for doc in await storage.top_ups_of_call(event.call_id):
        await top_up(storage, event.call_id, doc["amount_cents"], in_its_correlation(delivery, doc), doc["event_id"])


async def on_call_updated(event: CallUpdated, delivery: Delivery, storage: Storage) -> None:
    """A change before the call opened: its dates, budget, countries and last exchange day."""
    def change(book: CallBook) -> list:
        return book.call_changed(event.revision, event.opens_on, event.closes_on, event.budget_change_cents,
                                 event.eligible_countries, event.exchanges_end_on, event.updated_by or "applications")
    await _on_call(event.call_id, change, delivery, storage, Needs(statuses=(WAITLISTED,)))


def in_its_correlation(delivery: Delivery, doc: dict):
    """Events caused by a kept event, in that event's correlation."""
    def wrap(ev, subject) -> Envelope:
        return Envelope.wrap(ev, source=delivery.source, subject=subject, correlation_id=doc["correlation_id"],
                             causation_id=doc["event_id"])
    return wrap


async def on_application_submitted(event: ApplicationSubmitted, delivery: Delivery, storage: Storage) -> None:
    await storage.keep_submission(event.application_id, event.call_id, event.model_dump(mode="json"),
                                  delivery.envelope)
    try:
        await admission(event, storage, caused_by(delivery), delivery.event_id)
    except CallMissing:
        log.info("call not known yet: the application waits for it", call_id=event.call_id)


async def _on_call(call_id: str, action, delivery: Delivery, storage: Storage, needs: Needs) -> None:
    try:
        await act_on_call(storage, call_id, action, caused_by(delivery), processed=delivery.event_id, needs=needs)
    except CallMissing:
        log.warning("event about a call assessment does not know: ignored", call_id=call_id)


async def on_application_withdrawn(event: ApplicationWithdrawn, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.withdrawn(event.application_id), delivery, storage,
                   Needs(event.application_id, statuses=(WAITLISTED,)))


async def on_application_cancelled(event: ApplicationCancelled, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.cancelled(event.application_id), delivery, storage,
                   Needs(event.application_id, statuses=(WAITLISTED,)))


async def top_up(storage: Storage, call_id: str, amount_cents: int, wrap, cause: str) -> None:
    await act_on_call(storage, call_id, lambda book: book.topped_up(amount_cents), wrap, processed=cause,
                      needs=Needs(statuses=(WAITLISTED,)))


async def on_budget_topped_up(event: BudgetToppedUp, delivery: Delivery, storage: Storage) -> None:
    try:
        await top_up(storage, event.call_id, event.amount_cents, caused_by(delivery), delivery.event_id)
    except CallMissing:  # its CallPublished is still on its way (another topic): kept for it
        await storage.keep_top_up(event.call_id, event.amount_cents, delivery.envelope)
        if await storage.envelope(event.call_id) is not None:  # opened meanwhile, perhaps before the keep
            await top_up(storage, event.call_id, event.amount_cents, caused_by(delivery), delivery.event_id)


async def on_commitment_reduced(event: CommitmentReduced, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.commitment_reduced(event.application_id, event.released_cents),
                   delivery, storage, Needs(event.application_id, statuses=(WAITLISTED,)))


async def on_payment_ordered(event: PaymentOrdered, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.payment_ordered(event.application_id, event.amount_cents),
                   delivery, storage, Needs(event.application_id))


async def on_commitment_released(event: CommitmentReleased, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.commitment_released(event.application_id, event.reason,
                                                                         event.released_cents),
                   delivery, storage, Needs(event.application_id, statuses=(WAITLISTED,)))


async def on_grant_refused(event: GrantRefused, delivery: Delivery, storage: Storage) -> None:
    await _on_call(event.call_id, lambda book: book.grant_refused(event.application_id, event.reason),
                   delivery, storage, Needs(event.application_id))


async def on_organisation(event: OrganisationEnrolled | OrganisationEnrolledV2, delivery: Delivery,
                          storage: Storage) -> None:
    """Who owns it: an assessor who does has a conflict of interest on its applications."""
    await storage.keep_owner(event.organisation_id, event.owner, event.revision)


async def on_offer(event: OfferPublished, delivery: Delivery, storage: Storage) -> None:
    """The places the host publishes on its offer (the host_capacity rule), at its latest revision."""
    await storage.keep_offer(event.offer_id, event.capacity, event.revision)


async def on_personal_data_erased(event: PersonalDataErased, delivery: Delivery, storage: Storage) -> None:
    await erase(event, delivery, storage.tombstones, storage.forget, AssessmentErasureReported)


async def on_export_requested(event: PersonalDataExportRequested, delivery: Delivery, storage: Storage) -> None:
    await answer(event, delivery, storage.db, storage.keys, storage.export, AssessmentExported)


# Assessment keeps no contact person (submissions are kept without them), so no event needs the
# erasure guard here.
HANDLERS: dict[type, Any] = {
    OrganisationEnrolled: on_organisation,
    OrganisationUpdated: on_organisation,
    OrganisationEnrolledV2: on_organisation,  # the owner only: the sealed contact stays sealed here
    OrganisationUpdatedV2: on_organisation,
    CallPublished: on_call_published,
    CallUpdated: on_call_updated,
    OfferPublished: on_offer,
    OfferUpdated: on_offer,
    ApplicationSubmitted: on_application_submitted,
    ApplicationSubmittedV2: on_application_submitted,
    ApplicationWithdrawn: on_application_withdrawn,
    ApplicationCancelled: on_application_cancelled,
    BudgetToppedUp: on_budget_topped_up,
    CommitmentReduced: on_commitment_reduced,
    CommitmentReleased: on_commitment_released,
    PaymentOrdered: on_payment_ordered,
    GrantRefused: on_grant_refused,
    PersonalDataErased: on_personal_data_erased,
    PersonalDataExportRequested: on_export_requested,
}

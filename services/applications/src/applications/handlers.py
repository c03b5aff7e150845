"""What the applications service does with each event: one table, read top to bottom.

Its own events come back from its topic: live they were already applied when the request
made them (their ids are marked processed), in a rebuild they build the read model.
Every other event that names an application is an entry of that exchange's timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from cx_shared.consumer import Delivery, Handler
from cx_shared.envelope import Envelope
from cx_shared.errors import Conflict
from cx_shared.events import Event, all_event_classes
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmitted, CallCancelled, CallClosed,
                                           CallPublished, CallUpdated, OfferPublished, OfferUpdated, OfferWithdrawn,
                                           OrganisationEnrolled, OrganisationUpdated, PartnershipFormed,
                                           PartnershipUpdated, PersonalDataErased, ApplicationsErasureReported,
                                           ApplicationSubmittedV2, OrganisationEnrolledV2, OrganisationUpdatedV2,
                                           ApplicationsExported, MembershipJoined, MembershipLeft,
                                           PersonalDataExportRequested)
from cx_shared.events.assessment import AssessmentErasureReported, AssessmentExported
from cx_shared.events.common import ErasureReport, ExportPart
from cx_shared.events.grants import GrantsErasureReported, GrantsExported
from cx_shared.events.notifications import NotificationsErasureReported, NotificationsExported
from cx_shared.personal_data.erasure import erase, guarding
from cx_shared.personal_data.export import answer
from cx_shared.personal_data.sealed import opening
from cx_shared.logging import get_logger

from applications import documents, domain
from applications.storage import CALLS, ERASURES, EXPORTS, OFFERS, ORGANISATIONS, PARTNERSHIPS, Storage

log = get_logger(__name__)
CANCELLATIONS = uuid.UUID("0b7e3c52-5d7a-4f0e-9a61-2c4d8e1f3a90")  # a call cancellation's exchanges


def recording(collection: str, to_document: Callable[[Any], dict]) -> Handler:
    async def on_event(event: Event, delivery: Delivery, storage: Storage) -> None:
        await storage.record(collection, to_document(event), delivery.event_id)
    on_event.__name__ = f"record_{collection}"
    return on_event


def indexed(record: Handler) -> Handler:
    """An offer's event, then its entries of the search index as the offer now stands (a rebuild
    makes them; live, it makes sure the request's indexing was done)."""
    async def on_event(event: Event, delivery: Delivery, storage: Storage) -> None:
        await record(event, delivery, storage)
        await storage.index_offer(event.offer_id)
    on_event.__name__ = f"{record.__name__}_indexed"
    return on_event


async def on_application_submitted(event: ApplicationSubmitted, delivery: Delivery, storage: Storage) -> None:
    doc = documents.application(event, delivery.envelope)
    await storage.record("applications", doc, delivery.event_id)
    await storage.note(event.application_id, documents.entry(delivery.envelope))


async def on_membership_joined(event: MembershipJoined, delivery: Delivery, storage: Storage) -> None:
    await storage.change_membership(event.organisation_id, event.partnership_id, documents.membership(event),
                                    event_id=delivery.event_id)


async def on_membership_left(event: MembershipLeft, delivery: Delivery, storage: Storage) -> None:
    await storage.change_membership(event.organisation_id, event.partnership_id, None, event_id=delivery.event_id)


async def on_lifecycle_event(event: Event, delivery: Delivery, storage: Storage) -> None:
    """Every event about an exchange is an entry of its timeline; one that shapes the exchange
    (its status, report, money, follow-up facts) is folded into its document too."""
    application_id = getattr(event, "application_id", None)
    if not application_id:
        return  # e.g. an email not about an exchange
    entry = documents.entry(delivery.envelope)
    await storage.note(application_id, entry)
    fields = documents.follow_up_fields(type(event).name, delivery.envelope.data)
    if not fields and not domain.shapes_exchange(entry):
        return
    folded = await storage.fold_event(application_id, entry, event_id=delivery.event_id, fields=fields)
    if folded is None:
        log.warning("event for an unknown application: in its timeline only", application_id=application_id)


def cancellable(exchange: dict) -> None:
    domain.transition(exchange["status"], domain.Status.CANCELLED)  # 409 when it moved on meanwhile


async def on_call_cancelled(event: CallCancelled, delivery: Delivery, storage: Storage) -> None:
    """Cancel every exchange of the call not yet granted, each with its application.cancelled
    (assessment releases its reservation, grants any commitment made meanwhile, the parties are
    told). One event id per exchange and cancellation: a redelivery cancels nothing twice."""
    await storage.record(CALLS, documents.call_cancellation(event), delivery.event_id)
    for doc in await storage.applications_of_call(event.call_id, domain.NOT_YET_GRANTED):
        cancelled = ApplicationCancelled(application_id=doc["_id"], call_id=event.call_id,
                                         reason=f"the call was cancelled: {event.reason}".rstrip(": "),
                                         cancelled_by=event.cancelled_by)
        # Its id and time are the cancellation's: a redelivery, or a rebuild, makes the same event.
        envelope = Envelope.wrap(cancelled, source=delivery.envelope.source, subject=doc["_id"],
                                 correlation_id=delivery.envelope.correlationid, causation_id=delivery.event_id)
        one_id = uuid.uuid5(CANCELLATIONS, f"{delivery.event_id}/{doc['_id']}")
        envelope = envelope.model_copy(update={"id": str(one_id), "time": delivery.envelope.time})
        try:
            await storage.fold_event(doc["_id"], documents.entry(envelope), event_id=envelope.id, events=(envelope,),
                                     check=cancellable)
        except Conflict:
            log.info("exchange moved on before the call's cancellation reached it", application_id=doc["_id"])


async def on_personal_data_erased(event: PersonalDataErased, delivery: Delivery, storage: Storage) -> None:
    """The request's document (a replay makes it), then our part of the erasure, reported."""
    await storage.record(ERASURES, documents.erasure(event), delivery.event_id)
    await erase(event, delivery, storage.tombstones, storage.forget, ApplicationsErasureReported)


async def on_erasure_reported(event: ErasureReport, delivery: Delivery, storage: Storage) -> None:
    await storage.fold_answer(ERASURES, event.erasure_id, f"reports.{event.service}", event.model_dump(mode="json"),
                              delivery.event_id)


async def on_export_requested(event: PersonalDataExportRequested, delivery: Delivery, storage: Storage) -> None:
    """The request's document (a replay makes it), then our part of the export."""
    await storage.record(EXPORTS, documents.export(event), delivery.event_id)
    await answer(event, delivery, storage.db, storage.keys, storage.export, ApplicationsExported)


async def on_exported(event: ExportPart, delivery: Delivery, storage: Storage) -> None:
    """A service's part, kept sealed: opened only when the export is read (and never once erased)."""
    await storage.fold_answer(EXPORTS, event.export_id, f"parts.{event.service}", event.part_sealed,
                              delivery.event_id)


HANDLERS: dict[type[Event], Handler] = {
    OrganisationEnrolled: recording(ORGANISATIONS, documents.organisation),
    OrganisationUpdated: recording(ORGANISATIONS, documents.organisation),
    PartnershipFormed: recording(PARTNERSHIPS, documents.partnership),
    PartnershipUpdated: recording(PARTNERSHIPS, documents.partnership),
    CallPublished: recording(CALLS, documents.call),
    CallUpdated: recording(CALLS, documents.call),
    CallClosed: recording(CALLS, documents.call_closure),
    OfferPublished: indexed(recording(OFFERS, documents.offer)),
    OfferUpdated: indexed(recording(OFFERS, documents.offer)),
    OfferWithdrawn: indexed(recording(OFFERS, documents.offer_withdrawal)),
    ApplicationSubmitted: on_application_submitted,
    ApplicationSubmittedV2: on_application_submitted,
    PersonalDataErased: on_personal_data_erased,
    PersonalDataExportRequested: on_export_requested,
}
# What creates the read model's documents (the rest folds into them).
CREATIONS = frozenset(HANDLERS)
# In a rebuild, after the creations and in time order: it cancels what was not granted by then.
HANDLERS[CallCancelled] = on_call_cancelled
# After the enrolments, in time order: an organisation's joins and leaves (the only source of its memberships).
HANDLERS[MembershipJoined] = on_membership_joined
HANDLERS[MembershipLeft] = on_membership_left
HANDLERS.update({report: on_erasure_reported for report in (ApplicationsErasureReported, AssessmentErasureReported,
                                                              GrantsErasureReported, NotificationsErasureReported)})
HANDLERS.update({part: on_exported for part in (ApplicationsExported, AssessmentExported, GrantsExported,
                                                NotificationsExported)})
# The rest of the lifecycle: every contract (of any service) about an application.
HANDLERS.update({cls: on_lifecycle_event for cls in all_event_classes()
                 if "application_id" in cls.model_fields and cls not in HANDLERS})
# No event brings back the contact of an erased subject (a redelivery, a replay).
HANDLERS = guarding(HANDLERS)
# The sealed versions (enrolments, reports, feedback), opened with the subject's key (the erased
# placeholders once it is gone).
HANDLERS.update(opening(HANDLERS))
CREATIONS = CREATIONS | {OrganisationEnrolledV2, OrganisationUpdatedV2}

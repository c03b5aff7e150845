"""Event -> domain -> storage. Every lifecycle event is offered to webhook subscribers; the ones
in the routing table become emails; some schedule or cancel reminders.

Idempotent by construction: queue items, deliveries and reminders have ids derived from the
event's id, so a redelivered event inserts nothing new and sends nothing twice.
"""

from __future__ import annotations

import json
from datetime import date

from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events import Event, all_event_classes
from cx_shared.events.applications import (ApplicationSubmitted, CallPublished, OrganisationEnrolled,
                                           PersonalDataErased, PersonalDataExportRequested)
from cx_shared.events.notifications import NotificationsErasureReported, NotificationsExported
from cx_shared.logging import get_logger
from cx_shared.personal_data.erasure import erase, without_erased
from cx_shared.personal_data.export import answer
from cx_shared.personal_data.sealed import in_clear

from notifications.domain import (
    CANCELLED_BY,
    VISITOR,
    ExchangeDates,
    Recipient,
    ReminderPolicy,
    concerns_people,
    confirmation,
    language,
    needs_confirmation,
    email_context,
    morning_of,
    plan_emails,
    reminders_for,
    rescheduled_reminders,
    routing_key,
    structured_cloudevent,
    wants,
    webhook_delivery_id,
    without_contacts,
)
from notifications.storage import ENROLMENT, Storage

log = get_logger(__name__)


async def on_event(event: Event, delivery: Delivery, storage: Storage, offer: bool = True) -> None:
    event, delivery = await in_clear(event, delivery, storage.keys)  # a sealed contact opened with its key
    event, delivery = await without_erased(event, delivery, storage.tombstones)  # what was erased stays so
    await remember(event, delivery.envelope, storage)
    if offer:  # an erasure too: a subscriber holding the subject's data learns to erase it
        await offer_to_subscribers(event, delivery.envelope, storage)
    if isinstance(event, PersonalDataErased):
        await erase(event, delivery, storage.tombstones, storage.forget, NotificationsErasureReported)
    elif isinstance(event, PersonalDataExportRequested):
        await answer(event, delivery, storage.db, storage.keys, storage.export, NotificationsExported)
    await notify(event, delivery.envelope, storage)
    if isinstance(event, ApplicationSubmitted):
        await replay_parked(event.application_id, storage, offer)
    if isinstance(event, OrganisationEnrolled):  # events that waited for this party's contact
        await replay_parked(ENROLMENT + event.organisation_id, storage, offer)


async def remember(event: Event, envelope: Envelope, storage: Storage) -> None:
    """The read models: recipients from enrolment, calls' contacts, applications' parties and dates."""
    if isinstance(event, OrganisationEnrolled):  # OrganisationUpdated too (a subclass)
        await storage.save_organisation(event.model_dump(mode="json"))
        if event.contact is not None:  # a new contact address is asked to confirm at once
            recipient = Recipient(VISITOR, event.contact.email, "", language(event.contact.language))
            await ask_confirmations([recipient], envelope, storage)
    elif isinstance(event, CallPublished):
        await storage.save_call(event.model_dump(mode="json"))
    elif isinstance(event, ApplicationSubmitted):
        await storage.save_application(event.model_dump(mode="json"))


async def partnership_of(event: Event, storage: Storage) -> str | None:
    """The partnership an event belongs to: its own field, else its call's, else its application's
    (None: not known yet, or an event of no partnership, such as an enrolment)."""
    if partnership_id := getattr(event, "partnership_id", None):
        return partnership_id
    call_id = getattr(event, "call_id", None)
    if call_id and (partnership_id := await storage.partnership_of_call(call_id)):
        return partnership_id
    application = await storage.application(getattr(event, "application_id", None))
    return application["partnership_id"] if application else None


async def offer_to_subscribers(event: Event, envelope: Envelope, storage: Storage) -> None:
    """One delivery per (subscription, event) within the subscription's scope; the body is fixed
    now so every retry signs the same bytes. Subscriptions scoped to partnerships get it without
    contact data. An exchange's event whose partnership is not known yet (it overtook its
    submission) goes to programme-wide subscriptions now, and is parked for the others."""
    partnership_id = await partnership_of(event, storage)
    application_id = getattr(event, "application_id", None)
    if partnership_id is None and application_id is not None:
        await storage.park(envelope, application_id)
    full = structured_cloudevent(envelope.to_outbox())
    bodies = {True: full, False: {**full, "data": without_contacts(full["data"])}}
    for sub in await storage.subscriptions_hearing_of(partnership_id):
        if wants(sub["event_types"], envelope.type):
            body = json.dumps(bodies[bool(sub.get("programme_wide"))], separators=(",", ":"))
            await storage.enqueue_delivery({"_id": webhook_delivery_id(sub["_id"], envelope.id),
                                            "subscription_id": sub["_id"], "partnership_id": partnership_id,
                                            "event_id": envelope.id, "event_type": envelope.type,
                                            "subject": envelope.subject, "body": body})


async def notify(event: Event, envelope: Envelope, storage: Storage) -> None:
    name = type(event).name
    application_id = getattr(event, "application_id", None)
    if application_id is None or not concerns_people(name):
        return
    application = await storage.application(application_id)
    if application is None:  # a decision overtook the submission (another topic): keep it for later
        await storage.park(envelope, application_id)
        log.info("event parked until its application is known", application_id=application_id)
        return
    if unknown := await storage.unknown_parties(application):  # its enrolment is a moment behind
        await storage.park(envelope, ENROLMENT + unknown[0])
        log.info("event parked until the party's enrolment is known", organisation_id=unknown[0])
        return
    cause = cause_of(envelope)
    call = await storage.call(application["call_id"])
    audience = await storage.audience(application, call)
    opted_out = await storage.opted_out([r.email for r in audience.everyone()])
    unconfirmed = await ask_confirmations(audience.everyone(), envelope, storage)
    planned = plan_emails(envelope.id, routing_key(name, envelope.data), audience, opted_out, unconfirmed)
    context = email_context(application, call, event.model_dump(mode="json"))
    partnership_id = application["partnership_id"]
    await storage.enqueue_emails(planned, cause=cause, application_id=application_id, context=context,
                                 partnership_id=partnership_id)
    await storage.schedule(reminders_for(name, application_id, envelope.time, exchange_dates(application),
                                         reminder_policy(storage)), cause, partnership_id)
    await storage.reschedule(rescheduled_reminders(name, application_id, envelope.data, reminder_policy(storage)),
                             cause, partnership_id)
    if name in CANCELLED_BY:
        await storage.cancel_reminders(application_id, CANCELLED_BY[name], at=envelope.time)


def cause_of(envelope: Envelope) -> dict:
    return {"event_id": envelope.id, "event_type": envelope.type, "subject": envelope.subject,
            "correlation_id": envelope.correlationid}


async def ask_confirmations(recipients: list[Recipient], envelope: Envelope | None, storage: Storage,
                            cause: dict | None = None) -> frozenset[str]:
    """The organisations' contact addresses among ``recipients`` not confirmed yet, each sent its
    confirmation (once: its id is the address's) before anything else can go to it."""
    at = envelope.time if storage.replaying and envelope is not None else None
    unconfirmed = await storage.unconfirmed(needs_confirmation(recipients), at)
    cause = cause or cause_of(envelope)
    for r in recipients:
        if (address := r.email.strip().lower()) in unconfirmed:
            await storage.enqueue_emails([confirmation(address, r.language)], cause=cause, application_id=None,
                                         context={}, partnership_id=None)
    return unconfirmed


async def replay_parked(application_id: str, storage: Storage, offer: bool = True) -> None:
    """Events that came before their application: now their partnership and people are known.
    Offering again adds only the deliveries missing (their ids are fixed per subscription)."""
    for envelope in await storage.parked_for(application_id):
        event = envelope.event()
        if event is not None:
            if offer:
                await offer_to_subscribers(event, envelope, storage)
            await notify(event, envelope, storage)
        await storage.unpark(envelope.id, application_id)


def exchange_dates(application: dict) -> ExchangeDates | None:
    try:
        start, end = date.fromisoformat(application["planned_start"]), date.fromisoformat(application["planned_end"])
    except (KeyError, TypeError, ValueError):
        return None
    return ExchangeDates(morning_of(start), morning_of(end))


def reminder_policy(storage: Storage) -> ReminderPolicy:
    s = storage.settings
    return ReminderPolicy(s.agreement_reminder_days, s.starting_soon_days, s.report_due_days)


# Every contract of the four topics: all are offered to webhook subscribers; the routing table
# in domain.ROUTES says which become emails.
HANDLERS = {cls: on_event for cls in all_event_classes()}

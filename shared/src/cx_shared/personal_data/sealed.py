"""Events whose personal data travels sealed (see keys.py): the producer seals the enrolment's
contact person under the organisation's key (organisation.enrolled/updated v2); a consumer that
reads the keys gets the enrolment in clear as v1 (its handlers are written for that shape), or,
when the key is gone (the subject erased), with the erased placeholder."""

from __future__ import annotations

import dataclasses
import functools

from cx_shared.consumer import Delivery, Handler
from cx_shared.events import Event
from cx_shared.events.applications import (OrganisationEnrolled, OrganisationEnrolledV2, OrganisationUpdated,
                                           OrganisationUpdatedV2)
from cx_shared.personal_data import ERASED_CONTACT
from cx_shared.personal_data.keys import KeyRing, Unreadable, seal

SEALED_VERSIONS = {OrganisationEnrolled: OrganisationEnrolledV2, OrganisationUpdated: OrganisationUpdatedV2}


async def sealed(event: OrganisationEnrolled, keys: KeyRing) -> OrganisationEnrolledV2:
    """The enrolment as it travels: its contact person sealed under the organisation's key (made now
    if it has none, and on the keys topic before this event can be)."""
    key = await keys.key_for(event.organisation_id)
    data = event.model_dump(mode="json", exclude={"contact"})
    contact = seal(key, event.organisation_id, event.contact.model_dump(mode="json"))
    return SEALED_VERSIONS[type(event)](**data, contact_sealed=contact)


async def in_clear(event: Event, delivery: Delivery, keys: KeyRing) -> tuple[Event, Delivery]:
    """A sealed enrolment as its clear version (the envelope's data too); any other event as it is."""
    if not isinstance(event, OrganisationEnrolledV2):
        return event, delivery
    try:
        contact = await keys.open(event.organisation_id, event.contact_sealed)
    except Unreadable:
        contact = ERASED_CONTACT  # erased: the key is gone, and the contact with it
    data = {k: v for k, v in delivery.envelope.data.items() if k != "contact_sealed"} | {"contact": contact}
    clear = OrganisationUpdated if isinstance(event, OrganisationUpdatedV2) else OrganisationEnrolled
    envelope = delivery.envelope.model_copy(update={"data": data})
    return clear.model_validate(data), dataclasses.replace(delivery, envelope=envelope)


def opened(handler: Handler) -> Handler:
    """A handler written for the clear enrolment, given the sealed one."""
    @functools.wraps(handler)
    async def on_event(event: Event, delivery: Delivery, storage) -> None:
        await handler(*await in_clear(event, delivery, storage.keys), storage)
    return on_event

"""Events whose personal data travels sealed (see keys.py), one mechanism for all of them: the
producer seals the personal fields under the key of the organisation the event names
(`organisation_id`): an enrolment's contact person (organisation.enrolled/updated v2), the texts a
visitor organisation wrote in its report (report.submitted v2) and a host organisation in its
feedback (host_feedback.submitted v2). A consumer that reads the keys gets the event in clear as
its clear version (its handlers are written for that shape), or, when the key is gone (the subject
erased), with the erased placeholders."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from cx_shared.consumer import Delivery, Handler
from cx_shared.events import Event
from cx_shared.events.applications import (HostFeedbackSubmitted, HostFeedbackSubmittedV2, OrganisationEnrolled,
                                           OrganisationEnrolledV2, OrganisationUpdated, OrganisationUpdatedV2,
                                           ReportSubmitted, ReportSubmittedV2)
from cx_shared.personal_data import ERASED, ERASED_CONTACT
from cx_shared.personal_data.keys import KeyRing, Unreadable, seal
from cx_shared.vocabulary import OUTCOME_KINDS


@dataclasses.dataclass(frozen=True)
class Sealing:
    """How one event travels sealed: which of its clear version's fields go sealed into which field
    of its travelling version, what they read once the key is gone, and what the travelling
    version says in clear beside them."""

    clear: type[Event]
    travelling: type[Event]
    fields: tuple[str, ...]  # the clear version's personal fields; a single one is sealed as its value
    into: str  # the travelling version's field that holds them sealed
    erased: Callable[[Mapping[str, Any]], dict]  # the travelling data -> the fields once the key is gone
    beside: Callable[[Mapping[str, Any]], dict] = lambda data: {}  # the clear data -> travelling fields in clear

    def packed(self, data: Mapping[str, Any]) -> Any:
        return data[self.fields[0]] if len(self.fields) == 1 else {f: data[f] for f in self.fields}

    def unpacked(self, value: Any) -> dict:
        return {self.fields[0]: value} if len(self.fields) == 1 else {f: value[f] for f in self.fields}


def _contact_erased(data: Mapping[str, Any]) -> dict:
    return {"contact": ERASED_CONTACT}


def _report_erased(data: Mapping[str, Any]) -> dict:
    return {"summary": ERASED, "learnt": ERASED, "free_text": ERASED,
            "outcomes": list(data.get("outcome_kinds") or [])}


def _outcome_kinds(data: Mapping[str, Any]) -> dict:
    return {"outcome_kinds": sorted({o for o in data.get("outcomes") or [] if o in OUTCOME_KINDS})}


REPORT_TEXTS = ("summary", "learnt", "free_text", "outcomes")
SEALINGS = {s.travelling: s for s in (
    Sealing(OrganisationEnrolled, OrganisationEnrolledV2, ("contact",), "contact_sealed", _contact_erased),
    Sealing(OrganisationUpdated, OrganisationUpdatedV2, ("contact",), "contact_sealed", _contact_erased),
    Sealing(ReportSubmitted, ReportSubmittedV2, REPORT_TEXTS, "texts_sealed", _report_erased, _outcome_kinds),
    Sealing(HostFeedbackSubmitted, HostFeedbackSubmittedV2, ("free_text",), "texts_sealed",
            lambda data: {"free_text": ERASED}),
)}
SEALED_VERSIONS = {s.clear: s.travelling for s in SEALINGS.values()}  # clear version -> travelling version


async def sealed(event: Event, keys: KeyRing) -> Event:
    """The event as it travels: its personal fields sealed under the key of its organisation (made
    now if it has none, and on the keys topic before this event can be)."""
    sealing = SEALINGS[SEALED_VERSIONS[type(event)]]
    subject_id = event.organisation_id
    key = await keys.key_for(subject_id)
    data = event.model_dump(mode="json")
    clear = {k: v for k, v in data.items() if k not in sealing.fields}
    return sealing.travelling(**clear, **sealing.beside(data), **{sealing.into: seal(key, subject_id,
                                                                                     sealing.packed(data))})


async def in_clear(event: Event, delivery: Delivery, keys: KeyRing | None) -> tuple[Event, Delivery]:
    """A sealed event as its clear version (the envelope's data and type too); any other event as it is.
    Without the key (erased, or a reader without keys) its personal fields read as erased."""
    sealing = SEALINGS.get(type(event))
    if sealing is None:
        return event, delivery
    data = delivery.envelope.data
    try:
        if keys is None:
            raise Unreadable("no keys")
        opened = sealing.unpacked(await keys.open(event.organisation_id, data[sealing.into]))
    except Unreadable:
        opened = sealing.erased(data)  # erased: the key is gone, and the data with it
    clear = {k: v for k, v in data.items() if k != sealing.into} | opened
    # Typed as the clear version: what is kept of it (a parked event, a webhook body) reads as one.
    envelope = delivery.envelope.model_copy(update={"data": clear, "type": sealing.clear.ce_type()})
    return sealing.clear.model_validate(clear), dataclasses.replace(delivery, envelope=envelope)


def opened(handler: Handler) -> Handler:
    """A handler written for the clear version, given the sealed one."""
    @functools.wraps(handler)
    async def on_event(event: Event, delivery: Delivery, storage) -> None:
        await handler(*await in_clear(event, delivery, storage.keys), storage)
    return on_event


def opening(handlers: Mapping[type[Event], Handler]) -> dict[type[Event], Handler]:
    """Each travelling version handled as its clear version is (opened first)."""
    return {travelling: opened(handlers[s.clear]) for travelling, s in SEALINGS.items() if s.clear in handlers}

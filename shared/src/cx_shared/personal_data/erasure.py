"""Erasure in every service: the tombstone per erased subject, the one way a service handles
`personal_data.erased` (tombstone, forget, report) and the guard that keeps any later event
from bringing the subject's contact back.

The tombstone is laid before anything is forgotten and the report is marked with the erasure's
event id after, each step idempotent: a crash anywhere redoes what was left (a redelivery), and
a service stopped during the erasure does it when its consumer comes back to the event.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from contextlib import suppress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from pymongo.asynchronous.database import AsyncDatabase

from cx_shared.consumer import Delivery, Handler
from cx_shared.events import Event
from cx_shared.events.applications import PersonalDataErased
from cx_shared.events.common import ErasureReport, Kept
from cx_shared.personal_data import contacts_of, needles, redact, subjects_in
from cx_shared.races import LostRace, until_stored
from cx_shared.store import PLUMBING, PROCESSED, change, not_processed

TOMBSTONES = "erased_subjects"
REPORTS = uuid.UUID("5d0f8e2a-3b7c-4c1e-9f6a-8e2d7b1c4a93")  # a service's report of one erasure


@dataclasses.dataclass(frozen=True)
class Forgotten:
    """What a service removed or anonymised of a subject, and what it kept and why."""

    removed: list[str]
    kept: list[Kept] = dataclasses.field(default_factory=list)


class Tombstones:
    """One document per erased subject (`_id` the organisation id); it also carries the
    service's report in its outbox, so the report goes out with the tombstone's last write."""

    def __init__(self, db: AsyncDatabase):
        self.collection = db[TOMBSTONES]

    async def erased(self, subject_ids: set[str]) -> set[str]:
        """Which of these subjects are erased: one read by _id each (a handful per event)."""
        found = [await self.collection.find_one({"_id": s}, {"_id": 1}) for s in sorted(subject_ids)]
        return {d["_id"] for d in found if d}

    async def reported(self, subject_id: str, event_id: str) -> bool:
        return await self.collection.find_one({"_id": subject_id, PROCESSED: event_id}, {"_id": 1}) is not None

    async def lay(self, subject_id: str, erasure_id: str, at: datetime) -> None:
        with suppress(DuplicateKeyError):  # laid already (the first erasure's stands)
            await self.collection.insert_one({"_id": subject_id, "erasure_id": erasure_id, "erased_at": at,
                                              "outbox": [], PROCESSED: []})

    async def report(self, subject_id: str, event_id: str, envelope) -> None:
        await self.collection.update_one(not_processed({"_id": subject_id}, event_id),
                                         change(events=[envelope], processed=event_id))


async def erase(event: PersonalDataErased, delivery: Delivery, tombstones: Tombstones,
                forget: Callable[[str], Awaitable[Forgotten]], report: type[ErasureReport]) -> None:
    """Tombstone, forget, report: a redelivery after the report changes nothing."""
    if await tombstones.reported(event.subject_id, delivery.event_id):
        return
    await tombstones.lay(event.subject_id, event.erasure_id, delivery.envelope.time)
    forgotten = await forget(event.subject_id)
    reported = report(erasure_id=event.erasure_id, subject_id=event.subject_id, service=report.topic.producer,
                      erased_at=datetime.now(UTC), removed=forgotten.removed, kept=forgotten.kept)
    envelope = delivery.emit(reported, subject=event.subject_id)
    # One id per erasure and service: a redelivery, or a rebuild, makes the same report.
    one_id = str(uuid.uuid5(REPORTS, f"{delivery.event_id}/{reported.service}"))
    await tombstones.report(event.subject_id, delivery.event_id, envelope.model_copy(update={"id": one_id}))


async def without_erased(event: Event, delivery: Delivery, tombstones: Tombstones) -> tuple[Event, Delivery]:
    """The event (and its envelope's data) without the contact of any erased subject it carries
    (a redelivered enrolment, a replayed submission): what was erased stays erased."""
    data = delivery.envelope.data
    erased = await tombstones.erased(subjects_in(data)) if subjects_in(data) else set()
    for subject_id in sorted(erased):
        data = redact(data, subject_id, needles(contacts_of(data, subject_id)))
    if not erased:
        return event, delivery
    envelope = delivery.envelope.model_copy(update={"data": data})
    return type(event).model_validate(data), dataclasses.replace(delivery, envelope=envelope)


def guarded(handler: Handler) -> Handler:
    """The handler, never given the contact of an erased subject."""
    @functools.wraps(handler)
    async def on_event(event: Event, delivery: Delivery, storage) -> None:
        await handler(*await without_erased(event, delivery, storage.tombstones), storage)
    return on_event


def guarding(handlers: Mapping[type[Event], Handler]) -> dict[type[Event], Handler]:
    return {cls: guarded(handler) for cls, handler in handlers.items()}


Place = tuple[AsyncCollection, Mapping[str, Any]]  # a collection and the query finding the subject's documents


async def forget_in(places: list[Place], subject_id: str, more: list[dict] = ()) -> int:
    """Every document of `places` without the subject's personal data: the contacts they hold
    (each revision a snapshot kept), and `more` known elsewhere, become placeholders wherever
    they appear. How many documents changed."""
    found = needles([*more, *[c for collection, query in places
                              for c in await stored_contacts(collection, query, subject_id)]])
    return sum([await redact_stored(collection, query, subject_id, found) for collection, query in places])


async def stored_contacts(collection: AsyncCollection, query: Mapping[str, Any], subject_id: str) -> list[dict]:
    """The subject's contacts held in the documents the query finds (each revision a snapshot kept)."""
    return [c async for doc in collection.find(dict(query)) for c in contacts_of(doc, subject_id)]


async def redact_stored(collection: AsyncCollection, query: Mapping[str, Any], subject_id: str,
                        found: list[str]) -> int:
    """Rewrite each document the query finds without the subject's personal data (see `redact`);
    how many changed. A document with a `revision` is changed only at the revision it was read
    at, and one later, so a writer that read it before cannot put the data back."""
    changed = 0
    async for doc in collection.find(dict(query), {"_id": 1}):
        changed += await until_stored(lambda d=doc: _redact_one(collection, d["_id"], subject_id, found),
                                      what=f"erasure in {collection.name} {doc['_id']}")
    return changed


async def _redact_one(collection: AsyncCollection, doc_id: Any, subject_id: str, found: list[str]) -> int:
    doc = await collection.find_one({"_id": doc_id})
    if doc is None:
        return 0
    held = {k: v for k, v in doc.items() if k not in PLUMBING and k != "_id"}
    fields = {k: v for k, v in redact(held, subject_id, found).items() if v != doc.get(k)}
    if not fields:
        return 0
    where: dict[str, Any] = {"_id": doc_id}
    if isinstance(doc.get("revision"), int):
        where["revision"], fields["revision"] = doc["revision"], doc["revision"] + 1
    if (await collection.update_one(where, {"$set": fields})).matched_count != 1:
        raise LostRace(str(doc_id))
    return 1

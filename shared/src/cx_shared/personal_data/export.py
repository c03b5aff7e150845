"""Export in every service: its part of a subject's data, gathered from its own collections and
sealed under the subject's key (it travels on the service's topic), answered once per export.
The answer is written with its event in one insert (`personal_data_answers`, `_id` the export):
a redelivery of the request finds it there and sends nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared.consumer import Delivery
from cx_shared.events.applications import PersonalDataExportRequested
from cx_shared.events.common import ExportPart
from cx_shared.personal_data.erasure import Place
from cx_shared.personal_data.keys import KeyRing, seal
from cx_shared.store import PLUMBING, new_document

ANSWERS = "personal_data_answers"
PARTS = uuid.UUID("c3a1d6e4-7b2f-4e8a-9d15-0f6b2a8c7e41")  # a service's part of one export


async def documents_in(places: list[Place]) -> list[dict[str, Any]]:
    """Every document the places' queries find, without plumbing, named by its collection."""
    return [{"collection": collection.name, "document": {k: v for k, v in doc.items() if k not in PLUMBING}}
            for collection, query in places async for doc in collection.find(dict(query))]


async def answer(event: PersonalDataExportRequested, delivery: Delivery, db: AsyncDatabase, keys: KeyRing | None,
                 gather: Callable[[str], Awaitable[list[dict]]], part: type[ExportPart]) -> None:
    """Gather, seal, answer: once per export. A subject erased meanwhile (no key) gets an empty part, and
    so does a rebuild without keys (its answer is on the topic already, and the relay does not run)."""
    if await db[ANSWERS].find_one({"_id": event.export_id}, {"_id": 1}):
        return
    key = await keys.key_of(event.subject_id) if keys else None
    sealed = seal(key, event.subject_id, await gather(event.subject_id)) if key else ""
    answered = part(export_id=event.export_id, subject_id=event.subject_id, service=part.topic.producer,
                    exported_at=datetime.now(UTC), part_sealed=sealed)
    envelope = delivery.emit(answered, subject=event.subject_id)
    envelope = envelope.model_copy(update={"id": str(uuid.uuid5(PARTS, f"{delivery.event_id}/{answered.service}"))})
    with suppress(DuplicateKeyError):  # answered meanwhile
        await db[ANSWERS].insert_one(new_document({"_id": event.export_id, "subject_id": event.subject_id},
                                                  events=[envelope], processed=delivery.event_id))

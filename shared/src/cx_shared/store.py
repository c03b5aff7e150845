"""Atomic single-document changes that carry their own events and idempotency marks.

Production runs MongoDB 8 and local mode FerretDB, so nothing here needs multi-document
transactions or change streams: a state change, the events it causes (the document's
``outbox``) and the id of the event that caused it (``processed``) are written by one
update of one document. Either all of it happens or none of it does.

The same update marks the document ``outbox_pending`` (an indexed field the relay finds it
by, instead of scanning every document for a non-empty outbox) and keeps in
``outbox_since`` when its oldest unpublished event was added, so the relay publishes
documents in the order their events were written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cx_shared.envelope import Envelope

OUTBOX = "outbox"
PROCESSED = "processed"
RELAY_LEASE, RELAY_TOKEN = "relay_lease_until", "relay_lease_token"
PENDING, SINCE = "outbox_pending", "outbox_since"
PARKED = "outbox_parked"  # events the broker refused for good, with the reason (see outbox.py)
PLUMBING = (OUTBOX, PROCESSED, RELAY_LEASE, RELAY_TOKEN, PENDING, SINCE, PARKED)


def change(update: Mapping[str, Any] | None = None, *, events: Iterable[Envelope] = (),
           processed: str | None = None) -> dict[str, Any]:
    """An update document that also appends ``events`` to the outbox and marks ``processed``."""
    result: dict[str, Any] = {op: dict(fields) for op, fields in (update or {}).items()}
    push = result.setdefault("$push", {})
    entries = [e.to_outbox() for e in events]
    if entries:
        push[OUTBOX] = {"$each": entries}
        result.setdefault("$set", {})[PENDING] = True
        result.setdefault("$min", {})[SINCE] = datetime.now(UTC)
    if processed is not None:
        push[PROCESSED] = processed
    if not push:
        del result["$push"]
    return result


def not_processed(filter_: Mapping[str, Any], event_id: str | None) -> dict[str, Any]:
    """Narrow a filter to documents that have not yet applied ``event_id``: a redelivered
    event then matches nothing and changes nothing."""
    result = dict(filter_)
    if event_id is not None:
        result[PROCESSED] = {"$ne": event_id}
    return result


def new_document(doc: Mapping[str, Any], *, events: Iterable[Envelope] = (),
                 processed: str | None = None) -> dict[str, Any]:
    """A document to insert, created together with its events."""
    result = dict(doc)
    result[OUTBOX] = [e.to_outbox() for e in events]
    result[PROCESSED] = [processed] if processed else []
    if result[OUTBOX]:
        result[PENDING], result[SINCE] = True, datetime.now(UTC)
    return result


def public(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The document without its plumbing fields, for API responses."""
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in PLUMBING}

"""Changing a call book: read, decide (pure domain), write once; read again on a race.

Shared by the event handlers and the HTTP API, so both go through the same guarded,
single-document update and the same fact-to-event table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.errors import NotFound
from cx_shared.events import Event
from cx_shared.races import LostRace, until_stored

from assessment.contracts import event_of, subject_of
from assessment.domain import CallBook
from assessment.storage import Storage

Action = Callable[[CallBook], list[Any]]
Wrap = Callable[[Event, str], Envelope]  # (event, subject) -> envelope in the right correlation


class CallMissing(NotFound):
    pass


async def act_on_call(storage: Storage, call_id: str, action: Action, wrap: Wrap,
                      processed: str | None = None) -> tuple[CallBook, list[Any]] | None:
    """Apply ``action`` to the call book and store the result with its events.

    Returns the book and the facts, or None when ``processed`` was already applied."""
    async def step() -> tuple[CallBook, list[Any]] | None:
        loaded = await storage.load_call(call_id)
        if loaded is None:
            raise CallMissing(f"call {call_id} is not known to assessment")
        if processed and processed in loaded.causes:
            return None
        book = loaded.book
        facts = action(book)
        envelopes = [wrap(event_of(call_id, f), subject_of(call_id, f)) for f in facts]
        if not await storage.save_call(loaded, book, envelopes, processed):
            raise LostRace(call_id)
        return book, facts

    return await until_stored(step, what=f"call book {call_id}")

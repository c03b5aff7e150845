"""Deciding about a call: read the envelope and the entries the decision needs, decide
(pure domain), store the change (storage.py: prepare the entries, commit the envelope,
finish the entries); decide again on a lost race.

Shared by the event handlers and the HTTP API, so both go through the same guarded writes
and the same fact-to-event table.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from cx_shared import tally
from cx_shared.envelope import Envelope, as_request
from cx_shared.errors import NotFound
from cx_shared.events import Event
from cx_shared.lump_sums import LumpSumError
from cx_shared.races import Turns, until_stored

from assessment.contracts import event_of, subject_of
from assessment.domain import CallBook, Entry, Exchange, more_binding
from assessment.rules import Candidate
from assessment.storage import (SWEEP_EVERY, Change, Pending, Storage, book_of, committed, committed_at,
                                entry_state, envelope_state, pending_entry, pending_of)

Action = Callable[[CallBook], list[Any]]
Price = Callable[[str], int | LumpSumError]  # lump-sum rule set version -> cents, or why none
Wrap = Callable[[Event, str], Envelope]  # (event, subject) -> envelope in the right correlation


class CallMissing(NotFound):
    pass


# Decisions about one call queue up within a process: the consumer runs a batch's keys at once.
_deciding = Turns()


def _turn(call_id: str) -> asyncio.Lock:
    return _deciding.of(call_id)


@dataclass(frozen=True)
class Needs:
    """The entries a decision reads besides the call's envelope."""

    application_id: str | None = None  # the entry the decision is about
    statuses: tuple[str, ...] = ()  # every entry of the call in these statuses (a round, a promotion)
    visitor_id: str | None = None  # an admission: the visitor's other applications, in any call
    offer_id: str | None = None  # an admission: the places taken on the host offer
    offer_limited: bool = False  # the offer's places are known (published by its host)


class Loaded(NamedTuple):
    entries: list[Entry]  # settled: the decision may change them
    context: list[Entry]  # others of this call an admission is judged by (not changed)
    elsewhere: tuple[Exchange, ...]  # the visitor's live exchanges in other calls
    offer_elsewhere: tuple[Exchange, ...]  # the places held on the admission's offer in other calls
    replaces: dict[str, Pending]  # abandoned pending changes a new prepare replaces
    processed: tuple[str, ...]  # the ids of the events the subject entry has applied


async def act_on_call(storage: Storage, call_id: str, action: Action, wrap: Wrap, processed: str | None = None,
                      needs: Needs = Needs(), recorded: str | None = None) -> tuple[CallBook, list[Any]] | None:
    """Apply ``action`` to the call's book holding the entries ``needs`` names, and store it.

    ``processed``: the event that asks for it; none for an HTTP request, whose decision is
    remembered by the id of the first event it emits (``recorded``: that id, when a rebuild
    makes the request's decision again from its event).
    Returns the book and the facts, or None when the cause was already applied."""
    return await _decide(storage, call_id, lambda book, _: action(book), wrap, processed, needs, recorded)


async def admit(storage: Storage, call_id: str, candidate: Candidate, lump_sum: int | Price, wrap: Wrap,
                processed: str | None = None) -> tuple[CallBook, list[Any]] | None:
    """Eligibility and the first decision: constant work, whatever the size of the call.
    ``lump_sum``: cents, or the price by the call's lump-sum rule set (known from the call)."""
    needs = Needs(candidate.application_id, visitor_id=candidate.visitor.organisation_id, offer_id=candidate.offer_id,
                  offer_limited=candidate.offer_capacity is not None)

    def decide(book: CallBook, loaded: Loaded) -> list[Any]:
        cents = lump_sum(book.lump_sum_rule_set) if callable(lump_sum) else lump_sum
        return book.admit(candidate, cents, loaded.elsewhere, loaded.offer_elsewhere)
    return await _decide(storage, call_id, decide, wrap, processed, needs)


async def _decide(storage: Storage, call_id: str, decide: Callable[[CallBook, Loaded], list[Any]], wrap: Wrap,
                  processed: str | None, needs: Needs,
                  recorded: str | None = None) -> tuple[CallBook, list[Any]] | None:
    # A request is a cause too, never redelivered: its first event will carry this id (store), so
    # a rebuild that replays that event makes the same decision under the same cause.
    cause = processed or recorded or str(uuid.uuid4())
    request = processed is None

    async def step() -> tuple[CallBook, list[Any]] | None:
        envelope = await storage.envelope(call_id)
        if envelope is None:
            raise CallMissing(f"call {call_id} is not known to assessment")
        if tally.applied(envelope, cause):  # redelivered: finish what a crash left pending
            await storage.sweep(envelope, cause=cause)
            return None
        if envelope.get(tally.SEQ, 0) % SWEEP_EVERY == 0:
            await storage.sweep(envelope)
        loaded = await load(storage, envelope, needs)
        if cause in loaded.processed:  # redelivered after the ring forgot it
            return None
        book = book_of(envelope, loaded.entries + loaded.context)
        before = ({e.application_id: entry_state(e) for e in loaded.entries}, envelope_state(book))
        facts = decide(book, loaded)
        await store(storage, envelope, book, before, facts, wrap, cause, loaded,
                    None if request else needs.application_id, request)
        return book, facts

    async with _turn(call_id):
        return await until_stored(step, what=f"call {call_id}")


async def store(storage: Storage, envelope: dict[str, Any], book: CallBook, before: tuple[dict, dict],
                facts: list[Any], wrap: Wrap, cause: str, loaded: Loaded, subject: str | None,
                request: bool = False) -> None:
    entries_before, envelope_before = before
    wrapped = [wrap(event_of(book.call_id, fact), subject_of(book.call_id, fact)) for fact in facts]
    if request:
        wrapped = as_request(wrapped, cause)
    events: dict[str, list[Envelope]] = {}
    for envelope_ in wrapped:
        events.setdefault(envelope_.subject, []).append(envelope_)
    call_events = events.pop(book.call_id, [])
    context = {e.application_id for e in loaded.context}
    changed = [e for app_id, e in book.entries.items() if app_id not in context
               and (entry_state(e) != entries_before.get(app_id) or app_id in events)]
    if not changed and not call_events and envelope_state(book) == envelope_before:
        return  # nothing happened (a duplicate, a second claim): nothing to store
    await storage.save(envelope, book, Change(changed, events, loaded.replaces), cause, call_events, subject)


async def load(storage: Storage, envelope: dict[str, Any], needs: Needs) -> Loaded:
    call_id = envelope["_id"]
    entries: dict[str, Entry] = {}
    replaces: dict[str, Pending] = {}
    processed: tuple[str, ...] = ()

    async def take(doc: dict[str, Any]) -> None:
        if doc["_id"] in entries:
            return
        entry, abandoned = await storage.settle(envelope, doc)
        if entry is not None:
            entries[entry.application_id] = entry
        if abandoned is not None:
            replaces[doc["_id"]] = abandoned

    if needs.application_id and (doc := await storage.entry(needs.application_id)):
        processed = tuple(doc.get("processed") or ())
        await take(doc)
    if needs.statuses:
        for status in needs.statuses:
            for doc in await storage.entries_in(call_id, status):
                await take(doc)
        # committed but not finished yet (its writer is at it): the entry's new status counts
        for doc in await storage.pending_of_call(call_id):
            if committed_at(envelope, pending_of(doc)) and pending_entry(doc).status in needs.statuses:
                await take(doc)
    context, elsewhere, offer_elsewhere = await _seen_by_admission(storage, envelope, needs)
    return Loaded(list(entries.values()), context, elsewhere, offer_elsewhere, replaces, processed)


async def _seen_by_admission(storage: Storage, envelope: dict[str, Any],
                             needs: Needs) -> tuple[list[Entry], tuple[Exchange, ...], tuple[Exchange, ...]]:
    """The visitor's other applications and, when the offer's places are limited, those on
    the same host offer in any call (its places are the host's, whichever call fills them);
    each in its more binding state (its decision may be in flight)."""
    call_id = envelope["_id"]
    visitor, offer = {}, {}
    if needs.visitor_id:
        visitor = {d["_id"]: d for d in await storage.entries_of_visitor(needs.visitor_id)}
    if needs.offer_id and (needs.offer_limited or book_of(envelope).policy.offer_capacity(needs.offer_id) is not None):
        offer = {d["_id"]: d for d in await storage.entries_on_offer(needs.offer_id)}
    context, elsewhere, offer_elsewhere = [], [], []
    for app_id, doc in {**visitor, **offer}.items():
        states = [e for e in (committed(doc), pending_entry(doc)) if e is not None]
        if app_id == needs.application_id or not states:
            continue
        entry = more_binding(*states) if len(states) == 2 else states[0]
        if doc["call_id"] == call_id:
            context.append(entry)
            continue
        if app_id in visitor and (exchange := entry.live_exchange()):
            elsewhere.append(exchange)
        if app_id in offer and (place := entry.place()):
            offer_elsewhere.append(place)
    return context, tuple(elsewhere), tuple(offer_elsewhere)

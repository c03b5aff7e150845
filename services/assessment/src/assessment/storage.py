"""The only module that knows MongoDB.

``calls``: one document per call, its envelope: the call's facts, rule-set versions, mode,
money left (integer cents), the waiting list's length and the next arrival number. It is
changed only by ``cx_shared.tally.store``: a compare-and-set on ``seq`` that remembers its
cause in a fixed ring. Its size does not grow with the applications.

``entries``: one document per application (``_id`` = application id), with its own
``processed`` ids and outbox. A decision changes the envelope and the entries it decided
about, and no database here offers a transaction over several documents (FerretDB), so
every decision is written in three single-document steps:

1. *prepare*: each changed entry gets ``pending`` = {cause, seq of the envelope read,
   new state, its events}, only if it has no other pending change;
2. *commit*: the envelope's compare-and-set, remembering the cause in ``causes.<seq % RING>``;
3. *finish*: each entry takes its pending state, moves its events to its outbox and drops
   ``pending`` (only if the pending is still the one prepared).

The commit is the decision's only moment of truth. A pending change at seq ``s`` is settled
once the envelope has passed ``s``: committed if the ring names its cause at ``s``, else
abandoned (its writer lost the race or crashed before committing). Whoever meets a settled
pending finishes or discards it, so a crash between two steps loses nothing: before the
commit, nothing happened and the redelivered event decides again; after it, the redelivered
event (or anyone touching the entry, or the sweep every decision runs over the call's old
pending changes, long before the ring forgets) finishes the entry from what is stored. An
unsettled pending blocks other decisions on its entry until its writer commits or loses
(or, if it died, until the envelope is fenced past it). Money is only ever counted by the
envelope's compare-and-set, once per cause, and only within what is left.

Admissions read the envelope first and the visitor's and the offer's entries after it: an
admission committed before that read has its pending state visible by then, one committed
after it makes this admission's compare-and-set fail; so two simultaneous admissions never
both pass an overlap or capacity check.

Local mode (FerretDB) pushes down only equality on ``_id`` and on the leading field of an
index, so the hot path reads only by ``_id`` or by such an equality, and no indexed field
holds an array.

``submissions``: the facts of each ApplicationSubmitted as received (participant
snapshots, correlation), kept also for applications that arrive before their call.

``organisations``: who owns each organisation (``_id`` = organisation id, ``owner``, the
``revision`` it was read from), from applications' OrganisationEnrolled and OrganisationUpdated:
an assessor who owns the visitor's or the host's organisation has a conflict of interest. A
revision only replaces an older one, so redeliveries and late arrivals change nothing.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared import tally
from cx_shared.envelope import Envelope
from cx_shared.events.common import Kept
from cx_shared.personal_data import ERASED_CONTACT
from cx_shared.personal_data.erasure import TOMBSTONES, Forgotten, Place, Tombstones, forget_in
from cx_shared.personal_data.export import ANSWERS, documents_in
from cx_shared.personal_data.keys import KeyRing
from cx_shared.races import LostRace
from cx_shared.store import PLUMBING, change, new_document

from assessment.domain import CallBook, Entry, Policy

CALLS, ENTRIES, SUBMISSIONS, ORGANISATIONS = "calls", "entries", "submissions", "organisations"
EARLY_TOP_UPS, OFFERS = "early_top_ups", "offers"
PARTIES = ("data.visitor.organisation_id", "data.host.organisation_id")
OUTBOX_COLLECTIONS = [CALLS, ENTRIES, TOMBSTONES, ANSWERS]
PENDING, PENDING_CALL = "pending", "pending_call"
STORAGE_FIELDS = {"_id", tally.SEQ, tally.CAUSES, PENDING, PENDING_CALL, *PLUMBING}
# A decision's writer commits within milliseconds of preparing: a pending change still
# unsettled after this long belongs to a writer that died, and the envelope is fenced past it.
STUCK = timedelta(seconds=2)
# Pending changes this many envelope changes old are settled by the sweep that a decision
# runs every SWEEP_EVERY changes, long before the ring of causes (tally.RING) forgets them.
SWEEP_AFTER, SWEEP_EVERY = 64, 32


class Pending(NamedTuple):
    """The identity of a pending change: its cause and the envelope's seq it was decided on."""
    cause: str
    seq: int


class Change(NamedTuple):
    """What one decision stores: the entries it changed, and the events of each."""
    entries: list[Entry]
    events: dict[str, list[Envelope]]  # application id -> its events
    replaces: dict[str, Pending]  # application id -> an abandoned pending its prepare replaces


def plain(value: Any) -> Any:
    """BSON has no date type: dates are stored as ISO strings."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def entry_state(entry: Entry) -> dict[str, Any]:
    return plain(asdict(entry))


def entry_of(state: dict[str, Any]) -> Entry:
    if "estimate_cents" in state:  # stored before the one lump-sum rule: the field's old name
        state = {"lump_sum_cents": state["estimate_cents"], **state}
    fields = {k: v for k, v in state.items() if k in Entry.__dataclass_fields__}
    return Entry(**{**fields, "planned_start": date.fromisoformat(state["planned_start"]),
                    "planned_end": date.fromisoformat(state["planned_end"])})


def committed(doc: dict[str, Any]) -> Entry | None:
    """The entry as last committed; None for an application whose first decision is pending."""
    return entry_of(doc) if "status" in doc else None


def pending_of(doc: dict[str, Any]) -> Pending | None:
    pending = doc.get(PENDING)
    return Pending(pending["cause"], pending["seq"]) if pending else None


def pending_entry(doc: dict[str, Any]) -> Entry | None:
    return entry_of(doc[PENDING]["state"]) if doc.get(PENDING) else None


def stuck(at: datetime) -> bool:
    return datetime.now(UTC) - (at if at.tzinfo else at.replace(tzinfo=UTC)) > STUCK


def envelope_state(book: CallBook) -> dict[str, Any]:
    state = plain(asdict(book))
    del state["entries"]
    return state


def book_of(envelope: dict[str, Any], entries: list[Entry] = ()) -> CallBook:
    fields = {k: v for k, v in envelope.items() if k not in STORAGE_FIELDS}
    fields["opens_on"], fields["closes_on"] = (date.fromisoformat(envelope["opens_on"]),
                                               date.fromisoformat(envelope["closes_on"]))
    fields["policies"] = [Policy(**p) for p in envelope["policies"]]
    return CallBook(call_id=envelope["_id"], entries={e.application_id: e for e in entries}, **fields)


def committed_at(envelope: dict[str, Any], pending: Pending) -> bool | None:
    """Whether the envelope committed this pending change: None while it has not passed its seq;
    tally.Forgotten for one older than the ring (the sweep settles them long before)."""
    return tally.landed(envelope, pending.seq, pending.cause)


class Storage:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.calls = db[CALLS]
        self.entries = db[ENTRIES]
        self.submissions = db[SUBMISSIONS]
        self.tombstones = Tombstones(db)
        self.keys: KeyRing | None = None  # the subjects' keys (to seal an export): the service gives them
        self.early_top_ups = db[EARLY_TOP_UPS]
        self.offers = db[OFFERS]
        self.organisations = db[ORGANISATIONS]

    async def init(self) -> None:
        await self.calls.create_index([("partnership_id", ASCENDING)])
        await self.entries.create_index([("call_id", ASCENDING), ("status", ASCENDING)])
        await self.entries.create_index([("visitor_id", ASCENDING)])
        await self.entries.create_index([("offer_id", ASCENDING)])
        await self.entries.create_index([(PENDING_CALL, ASCENDING)])
        await self.submissions.create_index([("call_id", ASCENDING)])
        for party in PARTIES:  # an erasure finds the subject's submissions kept before contacts were dropped
            await self.submissions.create_index([(party, ASCENDING)])
        await self.early_top_ups.create_index([("call_id", ASCENDING)])
        await self.organisations.create_index([("owner", ASCENDING)])

    # --- reads ----------------------------------------------------------------------------

    async def envelope(self, call_id: str) -> dict[str, Any] | None:
        return await self.calls.find_one({"_id": call_id})

    async def calls_of_partnership(self, partnership_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.calls.find({"partnership_id": partnership_id})]

    async def entry(self, application_id: str) -> dict[str, Any] | None:
        return await self.entries.find_one({"_id": application_id})

    async def entries_in(self, call_id: str, status: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.entries.find({"call_id": call_id, "status": status})]

    async def entries_of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.entries.find({"call_id": call_id})]

    async def entries_of_visitor(self, visitor_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.entries.find({"visitor_id": visitor_id})]

    async def entries_on_offer(self, offer_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.entries.find({"offer_id": offer_id})]

    async def pending_of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.entries.find({PENDING_CALL: call_id})]

    # --- the envelope ------------------------------------------------------------------------

    async def open_call(self, book: CallBook) -> bool:
        """False when the call was already opened (a redelivered CallPublished)."""
        doc = {"_id": book.call_id, **envelope_state(book), tally.SEQ: 0, tally.CAUSES: {}}
        doc.pop("call_id")
        try:
            await self.calls.insert_one(new_document(doc))
        except DuplicateKeyError:
            return False
        return True

    async def fence(self, envelope: dict[str, Any]) -> None:
        """Move the envelope past a dead writer's seq: its pending change is then abandoned."""
        await tally.store(self.calls, envelope, {}, cause=None)

    # --- a decision's three steps --------------------------------------------------------------

    async def save(self, envelope: dict[str, Any], book: CallBook, change_: Change, cause: str,
                   call_events: list[Envelope], subject: str | None) -> None:
        """Prepare every changed entry, commit the envelope, finish the entries. LostRace when
        another decision got there first (nothing is committed then)."""
        seq = envelope.get(tally.SEQ, 0)
        prepared = []
        try:
            for entry in change_.entries:
                await self._prepare(book.call_id, entry, change_.events.get(entry.application_id, []),
                                    Pending(cause, seq), change_.replaces.get(entry.application_id),
                                    cause if entry.application_id == subject else None)
                prepared.append(entry.application_id)
            await tally.store(self.calls, envelope, {"$set": self._envelope_update(book)}, cause=cause,
                              events=call_events)
        except LostRace:  # nothing committed: free the entries at once for the decision that won
            for application_id in prepared:
                await self._discard(application_id, Pending(cause, seq))
            raise
        for entry in change_.entries:
            await self._finish(entry.application_id, Pending(cause, seq), entry_state(entry),
                               change_.events.get(entry.application_id, []),
                               cause if entry.application_id == subject else None)

    @staticmethod
    def _envelope_update(book: CallBook) -> dict[str, Any]:
        state = envelope_state(book)
        return {k: state[k] for k in ("budget_cents", "envelope_left_cents", "next_arrival", "waiting", "policies",
                                      "opens_on", "closes_on", "revision")}

    async def _prepare(self, call_id: str, entry: Entry, events: list[Envelope], pending: Pending,
                       replaces: Pending | None, processed: str | None) -> None:
        expected = ({f"{PENDING}.cause": replaces.cause, f"{PENDING}.seq": replaces.seq} if replaces
                    else {PENDING: None})
        record = {"cause": pending.cause, "seq": pending.seq, "at": datetime.now(UTC), "state": entry_state(entry),
                  "events": [e.to_outbox() for e in events], "processed": processed}
        # the indexed facts are set with the first prepare, so a pending admission is found
        keys = {"call_id": call_id, "visitor_id": entry.visitor_id, "offer_id": entry.offer_id}
        try:
            result = await self.entries.update_one({"_id": entry.application_id, **expected},
                                                   {"$set": {**keys, PENDING: record, PENDING_CALL: call_id}},
                                                   upsert=True)
        except DuplicateKeyError:  # the entry exists with another pending change
            raise LostRace(f"entry {entry.application_id} has a pending change") from None
        if result.matched_count == 0 and result.upserted_id is None:
            raise LostRace(f"entry {entry.application_id} has a pending change")

    async def _finish(self, application_id: str, pending: Pending, state: dict[str, Any],
                      events: list[Envelope], processed: str | None) -> None:
        """The committed state, its events and (for the entry the event was about) the cause's
        id, only while the pending is still the one committed: finishing twice does nothing."""
        update = change({"$set": state, "$unset": {PENDING: "", PENDING_CALL: ""}}, events=events,
                        processed=processed)
        await self.entries.update_one(
            {"_id": application_id, f"{PENDING}.cause": pending.cause, f"{PENDING}.seq": pending.seq}, update)

    async def _discard(self, application_id: str, pending: Pending) -> None:
        await self.entries.update_one(
            {"_id": application_id, f"{PENDING}.cause": pending.cause, f"{PENDING}.seq": pending.seq},
            {"$unset": {PENDING: "", PENDING_CALL: ""}})

    # --- settling what a crash or a lost race left pending ----------------------------------------

    async def settle(self, envelope: dict[str, Any], doc: dict[str, Any]) -> tuple[Entry | None, Pending | None]:
        """The entry as committed (finishing a committed pending first) and the pending change
        an abandoned attempt left, which the next prepare replaces. LostRace while a pending
        change is undecided, even one of the same cause (the same event handled twice at once):
        its writer is about to commit or lose."""
        pending = pending_of(doc)
        if pending is None:
            return committed(doc), None
        verdict = committed_at(envelope, pending)
        if verdict is None:
            if pending.seq > envelope.get(tally.SEQ, 0) or not stuck(doc[PENDING]["at"]):
                raise LostRace(f"entry {doc['_id']} has a change in flight")
            await self.fence(envelope)  # its writer died before committing
            raise LostRace(f"call {envelope['_id']} fenced past a dead writer")
        if not verdict:
            return committed(doc), pending
        record = doc[PENDING]
        await self._finish(doc["_id"], pending, record["state"], [Envelope.from_outbox(e) for e in record["events"]],
                           record["processed"])
        return entry_of(record["state"]), None

    async def sweep(self, envelope: dict[str, Any], cause: str | None = None) -> None:
        """Settle the call's pending changes that ``cause`` made (its redelivery found it
        committed), or, without a cause, those old enough to be settled for sure."""
        seq = envelope.get(tally.SEQ, 0)
        for doc in await self.pending_of_call(envelope["_id"]):
            pending = pending_of(doc)
            if pending.cause == cause if cause else seq - pending.seq >= SWEEP_AFTER:
                with suppress(LostRace):
                    _, abandoned = await self.settle(envelope, doc)
                    if abandoned:
                        await self._discard(doc["_id"], abandoned)

    # --- submissions ----------------------------------------------------------------------

    async def keep_submission(self, application_id: str, call_id: str, data: dict[str, Any],
                              envelope: Envelope) -> None:
        """The submission's facts without the parties' contact persons: no rule needs them."""
        data = {**data, **{p: {**data[p], "contact": ERASED_CONTACT} for p in ("visitor", "host")}}
        with suppress(DuplicateKeyError):  # redelivered: the first copy stands
            await self.submissions.insert_one({"_id": application_id, "call_id": call_id, "data": data,
                                               "event_id": envelope.id, "correlation_id": envelope.correlationid,
                                               # the exchange's trace, which later requests about it link to
                                               "traceparent": envelope.traceparent,
                                               "tracestate": envelope.tracestate,
                                               "received_at": datetime.now(UTC)})

    def places(self, subject_id: str) -> list[Place]:
        """Where the subject's data is: its submissions and who owns it."""
        return [*[(self.submissions, {party: subject_id}) for party in PARTIES],
                (self.organisations, {"_id": subject_id})]

    async def export(self, subject_id: str) -> list[dict]:
        return await documents_in(self.places(subject_id))

    async def forget(self, subject_id: str) -> Forgotten:
        """Contacts in submissions kept before assessment stopped keeping them."""
        changed = await forget_in([(self.submissions, {party: subject_id}) for party in PARTIES], subject_id)
        return Forgotten(removed=[f"contact persons in {changed} stored submissions"], kept=[Kept(
            what="the organisation's id, owner subject and its exchanges' assessment",
            why="conflicts of interest and the decisions' record; no contact person is kept")])

    async def submission(self, application_id: str) -> dict[str, Any] | None:
        return await self.submissions.find_one({"_id": application_id})

    async def submissions_of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.submissions.find({"call_id": call_id}).sort("received_at", ASCENDING)]

    async def keep_top_up(self, call_id: str, amount_cents: int, envelope: Envelope) -> None:
        """A top-up that came before its call (grants' topic overtook applications'): applied
        when the call is opened, caused by its own event (so once)."""
        with suppress(DuplicateKeyError):
            await self.early_top_ups.insert_one({"_id": envelope.id, "call_id": call_id, "amount_cents": amount_cents,
                                                 "event_id": envelope.id, "correlation_id": envelope.correlationid,
                                                 "received_at": datetime.now(UTC)})

    async def top_ups_of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.early_top_ups.find({"call_id": call_id}).sort("received_at", ASCENDING)]

    # --- host offers' places (the host_capacity rule) ---------------------------------------

    async def keep_offer(self, offer_id: str, capacity: int, revision: int) -> None:
        """The offer's places as of `revision`: an older or repeated revision changes nothing."""
        with suppress(DuplicateKeyError):  # a newer revision is already kept: it stands
            await self.offers.update_one({"_id": offer_id, "$or": [{"revision": {"$lt": revision}},
                                                                   {"revision": {"$exists": False}}]},
                                         {"$set": {"capacity": capacity, "revision": revision}}, upsert=True)

    async def offer_capacity(self, offer_id: str) -> int | None:
        doc = await self.offers.find_one({"_id": offer_id})
        return doc["capacity"] if doc else None

    # --- organisation owners (conflicts of interest) ----------------------------------------

    async def keep_owner(self, organisation_id: str, owner: str | None, revision: int) -> None:
        with suppress(DuplicateKeyError):  # a newer revision is already kept: it stands
            await self.organisations.update_one({"_id": organisation_id, "revision": {"$lt": revision}},
                                                {"$set": {"owner": owner, "revision": revision}}, upsert=True)

    async def organisations_owned_by(self, subject: str) -> frozenset[str]:
        return frozenset([doc["_id"] async for doc in self.organisations.find({"owner": subject}, {"_id": 1})])

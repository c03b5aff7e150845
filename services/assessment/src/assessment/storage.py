"""The only module that knows MongoDB.

``call_books``: the call book (domain.CallBook), the aggregate every decision changes,
stored as a chain of immutable revisions: each change INSERTS revision n+1 carrying the
new state, the events it causes (its outbox) and the id of the event that caused it.
Why inserts and not updates: on the local FerretDB (SQLite) concurrent updates of one
document lose writes, even ``$inc`` and a filter on a revision field, and the shared
outbox relay's ``$pullAll`` could overwrite a concurrent state change. A unique
``_id`` per (call, revision) makes a racing writer fail with DuplicateKeyError (it reads
again and retries), the relay only ever touches the outbox of revisions nobody writes
again, and the chain is the audit trail of every decision. Only the newest ``FULL_REVISIONS``
keep the whole state: older ones are slimmed to their cause (``processed``), their time and
their outbox, so a call of n applications stores O(n) and not O(n²), and redeliveries of any
age are still recognised: each full revision carries the ids of every event applied so far
(``causes``), so an event is checked against the revision it would change, by ``_id``.

``submissions``: the facts of each ApplicationSubmitted as received (participant
snapshots, correlation), kept also for applications that arrive before their call.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared.envelope import Envelope
from cx_shared.store import PLUMBING, new_document

from assessment.domain import CallBook, Entry, Policy

CALL_BOOKS, SUBMISSIONS = "call_books", "submissions"
OUTBOX_COLLECTIONS = [CALL_BOOKS]
WITHOUT_PLUMBING = {field: 0 for field in PLUMBING}
FULL_REVISIONS = 5  # a racing writer re-reads the latest; older states are only history
CAUSES = "causes"  # the ids of every event applied to the book so far (its idempotency)
STATE_OF_A_REVISION = ("entries", "policies", CAUSES)


class Loaded(NamedTuple):
    book: CallBook
    revision: int
    causes: tuple[str, ...]  # every event applied to the book up to this revision


def revision_id(call_id: str, revision: int) -> str:
    return f"{call_id}#{revision}"


def plain(value: Any) -> Any:
    """BSON has no date type: dates are stored as ISO strings."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def book_state(book: CallBook) -> dict[str, Any]:
    state = plain(asdict(book))
    # entries as a list: application ids are not safe as field names (dots)
    state["entries"] = list(state["entries"].values())
    return state


def book_from(doc: dict[str, Any]) -> CallBook:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "revision", "saved_at", CAUSES, *PLUMBING)}
    fields["opens_on"], fields["closes_on"] = date.fromisoformat(doc["opens_on"]), date.fromisoformat(doc["closes_on"])
    fields["policies"] = [Policy(**p) for p in doc["policies"]]
    fields["entries"] = {e["application_id"]: Entry(**{**e, "planned_start": date.fromisoformat(e["planned_start"]),
                                                        "planned_end": date.fromisoformat(e["planned_end"])})
                         for e in doc["entries"]}
    return CallBook(**fields)


class Storage:
    def __init__(self, db: AsyncDatabase):
        self.books = db[CALL_BOOKS]
        self.submissions = db[SUBMISSIONS]
        self._latest: dict[str, int] = {}  # a hint: the newest revision of each call this process saw

    async def init(self) -> None:
        await self.books.create_index([("call_id", ASCENDING), ("revision", DESCENDING)], unique=True)
        await self.books.create_index([("partnership_id", ASCENDING), ("revision", ASCENDING)])
        await self.submissions.create_index([("call_id", ASCENDING)])
        await self.submissions.create_index([("data.visitor.organisation_id", ASCENDING)])

    # --- call books ---------------------------------------------------------------------

    async def _insert_revision(self, book: CallBook, revision: int, events: list[Envelope],
                               processed: str | None, causes: tuple[str, ...]) -> bool:
        doc = {"_id": revision_id(book.call_id, revision), "revision": revision, "saved_at": datetime.now(UTC),
               **book_state(book), CAUSES: [*causes, *([processed] if processed else [])]}
        try:
            await self.books.insert_one(new_document(doc, events=events, processed=processed))
        except DuplicateKeyError:
            return False
        self._latest[book.call_id] = max(revision, self._latest.get(book.call_id, 0))
        return True

    async def open_call(self, book: CallBook, events: list[Envelope], processed: str) -> bool:
        """False when the call was already opened (a redelivered CallPublished)."""
        return await self._insert_revision(book, 0, events, processed, ())

    async def load_call(self, call_id: str) -> Loaded | None:
        """The newest revision. Revisions are numbered 0, 1, 2... without gaps and never removed,
        so it is found by look-ups by _id (the key every MongoDB-protocol database serves from
        its index; FerretDB reads a whole document even to filter it, so the big state is read
        once), galloping from the newest this process saw."""
        revision = self._latest.get(call_id, 0)
        doc = await self._revision(call_id, revision)
        if doc is None and revision:
            revision, doc = 0, await self._revision(call_id, 0)
        if doc is None:
            return None
        newest = await self._newest_from(call_id, revision)
        if newest != revision:
            doc = await self._revision(call_id, newest)
        self._latest[call_id] = newest
        return Loaded(book_from(doc), newest, tuple(doc.get(CAUSES, ())))

    async def _revision(self, call_id: str, revision: int) -> dict | None:
        return await self.books.find_one({"_id": revision_id(call_id, revision)}, WITHOUT_PLUMBING)

    async def _newest_from(self, call_id: str, low: int) -> int:
        """The newest revision, given that `low` exists."""
        async def exists(revision: int) -> bool:
            return await self.books.find_one({"_id": revision_id(call_id, revision)}, {"_id": 1}) is not None
        step = 1
        while await exists(low + step):
            low, step = low + step, step * 2
        high = low + step  # low exists, high does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if await exists(middle) else (low, middle)
        return low

    async def save_call(self, loaded: Loaded, book: CallBook, events: list[Envelope], processed: str | None) -> bool:
        """The revision after `loaded` with its events and the cause's id, only if `loaded` is
        still the newest. False means: somebody was faster, read again."""
        if not await self._insert_revision(book, loaded.revision + 1, events, processed, loaded.causes):
            return False
        if loaded.revision + 1 >= FULL_REVISIONS:
            await self.books.update_one({"_id": revision_id(book.call_id, loaded.revision + 1 - FULL_REVISIONS)},
                                        {"$unset": {field: "" for field in STATE_OF_A_REVISION}})
        return True

    async def calls_of_partnership(self, partnership_id: str) -> list[CallBook]:
        first = self.books.find({"partnership_id": partnership_id, "revision": 0}, {"call_id": 1})
        books = [await self.load_call(doc["call_id"]) async for doc in first]
        return [loaded[0] for loaded in books if loaded]

    # --- submissions ----------------------------------------------------------------------

    async def keep_submission(self, application_id: str, call_id: str, data: dict[str, Any],
                              envelope: Envelope) -> None:
        with suppress(DuplicateKeyError):  # redelivered: the first copy stands
            await self.submissions.insert_one({"_id": application_id, "call_id": call_id, "data": data,
                                               "event_id": envelope.id, "correlation_id": envelope.correlationid,
                                               "received_at": datetime.now(UTC)})

    async def submission(self, application_id: str) -> dict[str, Any] | None:
        return await self.submissions.find_one({"_id": application_id})

    async def visitor_submissions_elsewhere(self, visitor_id: str, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.submissions.find(
            {"data.visitor.organisation_id": visitor_id, "call_id": {"$ne": call_id}}, {"call_id": 1})]

    async def submissions_of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [doc async for doc in self.submissions.find({"call_id": call_id}).sort("received_at", ASCENDING)]

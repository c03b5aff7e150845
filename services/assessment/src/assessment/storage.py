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
age are still recognised.

``submissions``: the facts of each ApplicationSubmitted as received (participant
snapshots, correlation), kept also for applications that arrive before their call.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cx_shared.envelope import Envelope
from cx_shared.store import PLUMBING, PROCESSED, new_document

from assessment.domain import CallBook, Entry, Policy

CALL_BOOKS, SUBMISSIONS = "call_books", "submissions"
OUTBOX_COLLECTIONS = [CALL_BOOKS]
WITHOUT_PLUMBING = {field: 0 for field in PLUMBING}
FULL_REVISIONS = 5  # a racing writer re-reads the latest; older states are only history
STATE_OF_A_REVISION = ("entries", "policies")


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
    fields = {k: v for k, v in doc.items() if k not in ("_id", "revision", "saved_at", *PLUMBING)}
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

    async def init(self) -> None:
        await self.books.create_index([("call_id", ASCENDING), ("revision", DESCENDING)], unique=True)
        await self.books.create_index([("partnership_id", ASCENDING), ("revision", ASCENDING)])
        await self.books.create_index([("call_id", ASCENDING), (PROCESSED, ASCENDING)])
        await self.submissions.create_index([("call_id", ASCENDING)])
        await self.submissions.create_index([("data.visitor.organisation_id", ASCENDING)])

    # --- call books ---------------------------------------------------------------------

    async def _insert_revision(self, book: CallBook, revision: int, events: list[Envelope],
                               processed: str | None) -> bool:
        doc = {"_id": f"{book.call_id}#{revision}", "revision": revision, "saved_at": datetime.now(UTC),
               **book_state(book)}
        try:
            await self.books.insert_one(new_document(doc, events=events, processed=processed))
            return True
        except DuplicateKeyError:
            return False

    async def open_call(self, book: CallBook, events: list[Envelope], processed: str) -> bool:
        """False when the call was already opened (a redelivered CallPublished)."""
        return await self._insert_revision(book, 0, events, processed)

    async def load_call(self, call_id: str) -> tuple[CallBook, int] | None:
        docs = await self.books.find({"call_id": call_id}, WITHOUT_PLUMBING).sort("revision", DESCENDING).limit(1).to_list()
        return (book_from(docs[0]), docs[0]["revision"]) if docs else None

    async def has_processed(self, call_id: str, event_id: str) -> bool:
        return await self.books.find_one({"call_id": call_id, PROCESSED: event_id}, {"_id": 1}) is not None

    async def save_call(self, book: CallBook, revision: int, events: list[Envelope],
                        processed: str | None) -> bool:
        """The next revision with its events and the cause's id, only if ``revision`` is
        still the latest. False means: somebody was faster, read again."""
        if not await self._insert_revision(book, revision + 1, events, processed):
            return False
        await self._slim_before(book.call_id, revision + 2 - FULL_REVISIONS)
        return True

    async def _slim_before(self, call_id: str, revision: int) -> None:
        if revision > 0:
            await self.books.update_many(
                {"call_id": call_id, "revision": {"$lt": revision}, "entries": {"$exists": True}},
                {"$unset": {field: "" for field in STATE_OF_A_REVISION}})

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

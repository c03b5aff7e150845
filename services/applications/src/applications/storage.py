"""The only module that knows MongoDB (works on MongoDB 8 and FerretDB: single-document
atomic updates, no transactions, no change streams).

Every document is the state its events describe, so the same code builds it from an HTTP
request (with the event in its outbox) and from a replay of the topics (rebuild).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from cx_shared.envelope import Envelope
from cx_shared.locks import Locks
from cx_shared.logging import get_logger
from cx_shared.personal_data.export import ANSWERS, documents_in
from cx_shared.personal_data.keys import KeyRing
from cx_shared.personal_data.erasure import TOMBSTONES, Forgotten, Place, Tombstones, forget_in
from cx_shared.races import LostRace, until_stored
from cx_shared.events.common import Kept
from cx_shared.store import PROCESSED, change, new_document, not_processed

from applications import audience, documents, domain
from applications.access import MEMBERSHIPS

log = get_logger(__name__)

ORGANISATIONS, PARTNERSHIPS, CALLS, OFFERS, APPLICATIONS, TIMELINE = (
    "organisations", "partnerships", "calls", "offers", "applications", "timeline")
MILESTONES = "milestones"
ERASURES = "erasures"  # erasure requests and the services' reports on them
EXPORTS = "exports"  # export requests and the services' sealed parts
PARTIES_READ = 5000  # exchanges read to tell whose contact their staff see (fewer found: fewer shown)
OFFER_TERMS = "offer_terms"  # the offers' search index: one entry per (offer, term)
SEARCH_SCAN = 1000  # index entries one page of a text search looks at, at most
TIMELINE_LIMIT = 2000  # entries shown for one exchange (a lifecycle has a few dozen)
PROCESSED_KEPT = 200  # event ids an exchange's document remembers (FerretDB 1.24 ignores $push's $slice)
OUTBOX_COLLECTIONS = [ORGANISATIONS, PARTNERSHIPS, CALLS, OFFERS, APPLICATIONS, ERASURES, TOMBSTONES, EXPORTS, ANSWERS]


@dataclass(frozen=True)
class ApplicationFilter:
    """Which applications a caller may see (any of the scopes) and asked for (all of the filters).
    partnership_ids None means every partnership (a programme-wide manager)."""

    visitor_ids: set[str] = field(default_factory=set)
    host_ids: set[str] = field(default_factory=set)
    partnership_ids: set[str] | None = field(default_factory=set)
    call_id: str | None = None
    partnership_id: str | None = None
    status: str | None = None
    country: str | None = None
    ecosystem: str | None = None

    def query(self) -> dict[str, Any]:
        asked = {k: str(v) for k, v in (("call_id", self.call_id), ("partnership_id", self.partnership_id),
                                        ("status", self.status), ("countries", self.country),
                                        ("ecosystems", self.ecosystem)) if v}
        if self.partnership_ids is None:
            return asked
        scopes = [{"visitor_id": {"$in": sorted(self.visitor_ids)}}, {"host_id": {"$in": sorted(self.host_ids)}},
                  {"partnership_id": {"$in": sorted(self.partnership_ids)}}]
        return {"$and": [asked, {"$or": scopes}]} if asked else {"$or": scopes}


class Storage:
    def __init__(self, db: AsyncDatabase):
        self.db = db
        self.organisations = db[ORGANISATIONS]
        self.partnerships = db[PARTNERSHIPS]
        self.calls = db[CALLS]
        self.offers = db[OFFERS]
        self.offer_terms = db[OFFER_TERMS]
        self.applications = db[APPLICATIONS]
        self.timeline = db[TIMELINE]  # one document per entry, _id the event's id
        self.dashboard_links = db["dashboard_links"]  # one-time links to the indicators page
        # Submissions to one offer, or by one visitor, are checked and stored one at a time.
        self.locks = Locks(db["locks"])
        self.erasures = db[ERASURES]
        self.tombstones = Tombstones(db)
        self.keys: KeyRing | None = None  # the subjects' keys: the service gives them at start

    async def init(self) -> None:
        for key in ("visitor_id", "host_id", "call_id", "offer_id", "status"):
            await self.applications.create_index([(key, ASCENDING)])
        await self.applications.create_index([("report_state", ASCENDING), ("report_due_on", ASCENDING)])
        await self.timeline.create_index([("application_id", ASCENDING)])
        await self.offers.create_index([("host_id", ASCENDING)])
        await self.offers.create_index([("window_start", ASCENDING), ("_id", ASCENDING)])
        await self.offer_terms.create_index([("term", ASCENDING), ("window_start", ASCENDING), ("offer_id", ASCENDING)])
        await self.offer_terms.create_index([("offer_id", ASCENDING)])
        await self.organisations.create_index([("owner", ASCENDING)])

    # --- creation from a request or from a replayed event ------------------------------------

    async def create(self, collection: str, doc: Mapping[str, Any], envelope: Envelope) -> bool:
        """Insert a document with the event that announces it; False if it already exists."""
        try:
            await self.db[collection].insert_one(new_document(doc, events=[envelope], processed=envelope.id))
            return True
        except DuplicateKeyError:
            return False

    async def record(self, collection: str, doc: Mapping[str, Any], event_id: str) -> None:
        """Replay: set the document to what the event says, once (an upsert; a redelivery is a no-op)."""
        # Most of these are our own events coming back: a read by _id tells, where the upsert
        # would be a failed insert (a write, and an error in the database's log) every time.
        if await self.db[collection].find_one({"_id": doc["_id"], PROCESSED: event_id}, {"_id": 1}):
            return
        try:
            await self.db[collection].update_one(not_processed({"_id": doc["_id"]}, event_id),
                                                 change({"$set": dict(doc)}, processed=event_id), upsert=True)
        except DuplicateKeyError:
            pass  # exists and has already applied this event

    async def get(self, collection: str, id_: str) -> dict | None:
        return await self.db[collection].find_one({"_id": id_})

    async def update_revised(self, collection: str, key: str, revision: int, fields: Mapping[str, Any],
                             envelope: Envelope) -> bool:
        """Apply a change made against `revision` (an organisation, a partnership), with its event;
        False if someone changed it meanwhile."""
        result = await self.db[collection].update_one(
            {"_id": key, "revision": revision},
            change({"$set": {**fields, "revision": revision + 1}}, events=[envelope], processed=envelope.id))
        return result.matched_count == 1

    async def change_call(self, call_id: str, revision: int, opens_after: str, fields: Mapping[str, Any],
                          envelope: Envelope) -> bool:
        """Apply a change made against `revision` to a call not opened (opening after `opens_after`,
        not closed or cancelled), with its event; False if it changed, opened or ended meanwhile."""
        at = {"revision": revision} if revision > 1 else {"revision": {"$in": [1, None]}}  # older calls have none
        result = await self.calls.update_one(
            {"_id": call_id, **at, "opens_on": {"$gt": opens_after}, "status": {"$exists": False}},
            change({"$set": {**fields, "revision": revision + 1}}, events=[envelope], processed=envelope.id))
        return result.matched_count == 1

    async def end_call(self, call_id: str, fields: Mapping[str, Any], envelope: Envelope) -> bool:
        """Close or cancel a call still open (not cancelled), with its event; False if it was meanwhile."""
        result = await self.calls.update_one(
            {"_id": call_id, "status": {"$ne": domain.CALL_CANCELLED}},
            change({"$set": {k: v for k, v in fields.items() if k != "_id"}}, events=[envelope],
                   processed=envelope.id))
        return result.matched_count == 1

    async def applications_of_call(self, call_id: str, statuses: frozenset[str]) -> list[dict]:
        return [d async for d in self.applications.find({"call_id": call_id}, {MILESTONES: 0})
                if d["status"] in statuses]

    async def list_partnerships(self, partnership_ids: set[str] | None, limit: int = 500) -> list[dict]:
        """Every partnership (None), or those named."""
        query = {} if partnership_ids is None else {"_id": {"$in": sorted(partnership_ids)}}
        return [d async for d in self.partnerships.find(query).sort([("name", 1)]).limit(limit)]

    # --- organisations -----------------------------------------------------------------------

    async def change_membership(self, organisation_id: str, partnership_id: str, membership: Mapping[str, Any] | None,
                                *, event_id: str, events: tuple[Envelope, ...] = ()) -> bool:
        """Set the organisation's membership of a partnership (joining) or remove it (None: leaving),
        with its event, once: it lands only where the membership is not there (or is); False otherwise."""
        if "." in partnership_id or partnership_id.startswith("$"):  # a key of the memberships object
            raise ValueError(f"not a partnership id: {partnership_id!r}")
        key = f"{MEMBERSHIPS}.{partnership_id}"
        there, update = ((False, {"$set": {key: dict(membership)}}) if membership is not None
                         else (True, {"$unset": {key: ""}}))
        result = await self.organisations.update_one(
            not_processed({"_id": organisation_id, key: {"$exists": there}}, event_id),
            change(update, events=events, processed=event_id))
        return result.matched_count == 1

    async def exchange_parties(self, partnership_ids: Collection[str], organisation_ids: Collection[str]) -> set[str]:
        """Those of the organisations that are a party of an exchange of these partnerships its staff
        run: its visitor (it applied), or its host once it accepted the visit (host.accepted)."""
        if not partnership_ids or not organisation_ids:
            return set()
        scope, ids = {"partnership_id": {"$in": sorted(partnership_ids)}}, {"$in": sorted(organisation_ids)}
        # find, not distinct: FerretDB's distinct finds nothing with a filter into an array's documents
        found = set()
        for party, more in (("visitor_id", {}), ("host_id", {"milestones.event": "host.accepted"})):
            cursor = self.applications.find({**scope, party: ids, **more}, {party: 1}).limit(PARTIES_READ)
            found |= {d[party] async for d in cursor}
        return found

    async def organisations_owned_by(self, subject: str) -> list[str]:
        return [d["_id"] async for d in self.organisations.find({"owner": subject}, {"_id": 1})]

    async def list_organisations(self, query: Mapping[str, Any], limit: int = 500) -> list[dict]:
        return [d async for d in self.organisations.find(dict(query)).sort([("legal_name", 1)]).limit(limit)]

    # --- personal data ------------------------------------------------------------------------

    async def places(self, subject_id: str) -> list[Place]:
        """Where the subject's data is: its organisation, its exchanges and their timelines."""
        exchanges = [d["_id"] for party in ("visitor_id", "host_id")
                     async for d in self.applications.find({party: subject_id}, {"_id": 1})]
        places = [(self.organisations, {"_id": subject_id})]
        places += [(self.applications, {party: subject_id}) for party in ("visitor_id", "host_id")]
        return places + [(self.timeline, {"application_id": a}) for a in exchanges]

    async def export(self, subject_id: str) -> list[dict]:
        """The subject's data as the subject may read it (not every document that names it)."""
        return audience.export_for(subject_id, await documents_in(await self.places(subject_id)))

    async def forget(self, subject_id: str) -> Forgotten:
        """The subject's contact out of its organisation, and out of its exchanges' snapshots
        and timelines (whichever revision of the contact they hold); the texts it wrote (reports,
        host feedback) too."""
        places = await self.places(subject_id)
        await forget_in(places, subject_id)
        exchanges = len(places) - 3
        if self.keys is not None and self.keys.publisher is not None:  # live; a rebuild shreds nothing
            await self.keys.shred(subject_id)
        return Forgotten(removed=["the subject's data key: every sealed copy of the contact, reports and feedback, "
                                  "on every topic", "the organisation's contact person", "contacts in its exchanges' "
                                  f"snapshots and timelines ({exchanges} exchanges)", "the texts of its reports and "
                                  "host feedback, and the timeline's summaries of them"],
                         kept=[Kept(what="the organisation, its exchanges, the reports' and feedback's structured "
                                         "answers (satisfaction, the programme's outcome kinds) and the owner's subject",
                                    why="the programme's records of its grants and indicators; the owner may still "
                                        "act for it")])

    async def fold_answer(self, collection: str, request_id: str, field: str, value: Any, event_id: str) -> None:
        """A service's answer to a request (its report on an erasure, its part of an export), once;
        the request's document may come after it (a rebuild)."""
        try:
            await self.db[collection].update_one(not_processed({"_id": request_id}, event_id),
                                                 change({"$set": {field: value}}, processed=event_id), upsert=True)
        except DuplicateKeyError:
            pass  # already folded

    # --- one-time dashboard links ------------------------------------------------------------

    async def keep_dashboard_link(self, link: str, principal: Mapping[str, Any], expires_at: datetime) -> None:
        await self.dashboard_links.insert_one({"_id": link, "principal": dict(principal), "expires_at": expires_at})

    async def take_dashboard_link(self, link: str) -> dict | None:
        """The link's holder, once: taking it deletes it (an expired one too)."""
        return await self.dashboard_links.find_one_and_delete({"_id": link})

    # --- calls, offers -----------------------------------------------------------------------

    async def list_calls(self, query: Mapping[str, Any], after: tuple[str, ...] | None, limit: int) -> list[dict]:
        """Calls by opening day, from after (an opening day and an id) on."""
        query = dict(query)
        if after is not None:
            query["$or"] = [{"opens_on": {"$gt": after[0]}}, {"opens_on": after[0], "_id": {"$gt": after[1]}}]
        return [d async for d in self.calls.find(query).sort([("opens_on", 1), ("_id", 1)]).limit(limit)]

    async def index_offer(self, offer_id: str) -> None:
        """Make the offer's entries of the search index what its stored document says (after each
        change, and again when its event comes back: idempotent, three writes whatever changed)."""
        offer = await self.offers.find_one({"_id": offer_id})
        wanted = documents.offer_terms(offer) if offer else []
        await self.offer_terms.delete_many({"offer_id": offer_id, "term": {"$nin": [t["term"] for t in wanted]}})
        if wanted:
            await self.offer_terms.update_many({"offer_id": offer_id},
                                               {"$set": {k: offer.get(k) for k in documents.SEARCHED}})
            with suppress(BulkWriteError):  # the terms it had already
                await self.offer_terms.insert_many(wanted, ordered=False)

    async def search_offers(self, *, ecosystem: str | None, country: str | None, start: date | None,
                            end: date | None, terms: list[str] | None, after: tuple[str, ...] | None, skip: int,
                            limit: int) -> tuple[list[dict], tuple[str, str] | None]:
        """Offers by ecosystem, host country, a window overlapping start..end, and words of the title
        or description (all of them: the index finds the offers with the longest, each is checked
        for the others); one page, oldest window first, and where the next page starts (None at the
        end). A page looks at SEARCH_SCAN index entries at most: it may then come short, with a next."""
        # One flat filter: FerretDB pushes its top-level equalities down to the index (not an $and).
        query: dict[str, Any] = {k: v for k, v in (("ecosystem", ecosystem and str(ecosystem)),
                                                   ("country", country and country.upper())) if v}
        if start:
            query["window_end"] = {"$gte": start.isoformat()}
        if end:
            query["window_start"] = {"$lte": end.isoformat()}
        key = "_id" if terms is None else "offer_id"
        if after is not None:
            query["$or"] = [{"window_start": {"$gt": after[0]}}, {"window_start": after[0], key: {"$gt": after[1]}}]
        order = [("window_start", ASCENDING), (key, ASCENDING)]
        if terms is None:
            query["status"] = {"$ne": domain.OFFER_WITHDRAWN}
            found = [d async for d in self.offers.find(query).sort(order).skip(skip).limit(limit + 1)]
            return found[:limit], (found[limit - 1]["window_start"], found[limit - 1]["_id"]) \
                if len(found) > limit else None
        driver, others = max(terms, key=len), set(terms)
        entries = self.offer_terms.find({"term": driver, **query}).sort(order).limit(SEARCH_SCAN)
        matched, last, scanned = [], None, 0
        async for entry in entries:
            last, scanned = (entry["window_start"], entry["offer_id"]), scanned + 1
            offer = await self.offers.find_one({"_id": entry["offer_id"]})
            if offer and others <= set(documents.searchable(offer)):
                matched.append(offer)
                if len(matched) > skip + limit:
                    return matched[skip:skip + limit], (matched[-2]["window_start"], matched[-2]["_id"])
        return matched[skip:skip + limit], last if scanned == SEARCH_SCAN else None

    # --- applications ------------------------------------------------------------------------

    async def list_applications(self, f: ApplicationFilter, limit: int = 500) -> list[dict]:
        cursor = self.applications.find(f.query(), {MILESTONES: 0}).sort([("submitted_at", 1), ("_id", 1)])
        return [d async for d in cursor.limit(limit)]

    async def overlapping(self, field: str, value: str, start: str, end: str) -> list[str]:
        """Active exchanges of a visitor or through an offer whose dates overlap start..end."""
        query = {field: value, "status": {"$in": [str(s) for s in domain.ACTIVE]},
                 "planned_start": {"$lte": end}, "planned_end": {"$gte": start}}
        return [d["_id"] async for d in self.applications.find(query, {"_id": 1})]

    async def overdue_candidates(self, today: date) -> list[dict]:
        """Exchanges whose report is due before today and not in (the poller decides which are overdue)."""
        found = []
        for state in ("due", "changes_requested"):  # one state at a time: the index narrows each to it
            query = {"report_state": state, "report_due_on": {"$lt": today.isoformat()},
                     "report_overdue": {"$ne": True}}
            found += [d async for d in self.applications.find(query, {MILESTONES: 0}).limit(500)]
        return found

    async def exchanges_for_indicators(self, f: ApplicationFilter, limit: int = 20000) -> list[dict]:
        cursor = self.applications.find(f.query()).sort([("submitted_at", 1), ("_id", 1)])
        return [d async for d in cursor.limit(limit)]

    # --- the timeline ------------------------------------------------------------------------

    async def note(self, application_id: str, entry: Mapping[str, Any]) -> None:
        """Add an entry to an exchange's timeline: one insert, whatever the exchange's history;
        a redelivery finds it there."""
        try:
            await self.timeline.insert_one({**entry, "_id": entry["event_id"], "application_id": application_id})
        except DuplicateKeyError:
            pass

    async def with_timeline(self, doc: dict) -> dict:
        """The exchange with its whole timeline: its entries and its milestones (those are on
        the document from the moment they happen; the entries follow through the topics)."""
        noted = [{k: v for k, v in d.items() if k not in ("_id", "application_id")}
                 async for d in self.timeline.find({"application_id": doc["_id"]})
                 .sort([("at", -1), ("_id", -1)]).limit(TIMELINE_LIMIT)]  # the newest, if ever more
        return shown(doc, noted)

    async def timeline_page(self, application_id: str, events: list[str] | None, before: tuple[str, str] | None,
                            limit: int) -> list[dict]:
        """One page of an exchange's timeline, newest first: the entries of these events (None: all)
        older than `before` (an entry's time and id, the last of the previous page)."""
        query: dict[str, Any] = {"application_id": application_id}
        if events is not None:
            query["event"] = {"$in": events}
        if before is not None:
            at, event_id = before
            query["$or"] = [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": event_id}}]
        cursor = self.timeline.find(query).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [{k: v for k, v in d.items() if k != "application_id"} async for d in cursor]

    async def fold_event(self, application_id: str, entry: Mapping[str, Any], *, event_id: str,
                         events: tuple[Envelope, ...] = (), fields: Mapping[str, Any] | None = None,
                         check: Callable[[dict], None] | None = None) -> dict | None:
        """Add a milestone to an exchange and refold its status, atomically: the update only
        lands on the revision it was computed from (optimistic concurrency), else it is
        recomputed. `check` may refuse the change (e.g. an illegal transition) against the
        exchange as it stands; `fields` are set with it (follow-up facts: actual dates,
        report...). Returns the exchange as stored, None if there is none."""
        async def step() -> dict | None:
            doc = await self.applications.find_one({"_id": application_id})
            if doc is None:
                return None
            if event_id in doc.get(PROCESSED, []) or any(m["event_id"] == event_id for m in doc.get(MILESTONES, [])):
                return doc
            if check is not None:
                check(doc)
            milestones, status = domain.fold([*doc.get(MILESTONES, []), entry])
            # The processed ids are set, not pushed, and only the last PROCESSED_KEPT stay (the
            # milestones name every event folded in, however old): the document stays bounded.
            state = {**(fields or {}), MILESTONES: milestones, "status": str(status), "revision": doc["revision"] + 1,
                     **domain.report_state(milestones), PROCESSED: [*doc.get(PROCESSED, []), event_id][-PROCESSED_KEPT:]}
            result = await self.applications.update_one(
                not_processed({"_id": application_id, "revision": doc["revision"]}, event_id),
                change({"$set": state}, events=events))
            if result.matched_count != 1:
                raise LostRace(application_id)
            return {**doc, **state}

        return await until_stored(step, what=f"exchange {application_id}")


def shown(doc: Mapping[str, Any], noted: list[dict] | tuple = ()) -> dict:
    """An exchange as the API shows it: its milestones and noted entries as one timeline."""
    timeline, _ = domain.fold([*doc.get(MILESTONES, []), *noted])
    result = {k: v for k, v in doc.items() if k != MILESTONES}
    result["timeline"] = timeline
    return result

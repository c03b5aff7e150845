"""The outbox relay: publishes the events each document carries, then removes them.

A crash before the publish leaves the events in the document and they go out on the
next pass; a crash after the publish but before the removal publishes them again, and
consumers drop the duplicate by its CloudEvents id. Nothing is lost either way.

The relay finds pending documents by their indexed ``outbox_pending`` mark, never by a
scan. Its doorbell (cx_shared.doorbell) rings within the process right after a write that
adds events and names the documents, so an event goes out milliseconds after it is stored;
the slow poll only recovers what a crash or another replica left behind.

An event the broker refuses for good (too large, say) is parked on its document with the
reason, and logged: the other documents' events go on, instead of every pass failing on it.
Before that, no event above MAX_EVENT_BYTES is stored at all (``refuse_oversized``, applied
by ``Envelope.to_outbox``, the one way into an outbox): the change that would carry it fails
with a 413 problem, and nothing of it is written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from cx_shared.doorbell import Doorbell
from cx_shared.envelope import Envelope
from cx_shared.errors import TooLarge
from cx_shared.kafka import Publisher
from cx_shared.lease import Lease, new_token
from cx_shared.logging import get_logger
from cx_shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING
from cx_shared.store import OUTBOX, PARKED, PENDING, RELAY_LEASE, RELAY_TOKEN, SINCE

log = get_logger(__name__)
BATCH = 200
# Kafka takes records up to 1 MiB (message.max.bytes), headers and key included: an event is
# kept well under that, measured as the JSON the broker would receive.
MAX_EVENT_BYTES = 256 * 1024
LEASE = Lease(30.0, token=RELAY_TOKEN, until=RELAY_LEASE)


def refuse_oversized(entry: dict) -> dict:
    """An outbox entry (an envelope as stored), or TooLarge when it is above MAX_EVENT_BYTES."""
    size = len(json.dumps(entry, default=str).encode())
    if size > MAX_EVENT_BYTES:
        raise TooLarge(f"the event {entry.get('type')} would be {size} bytes, more than the {MAX_EVENT_BYTES} an "
                       "event may have: nothing was stored", field="event", rule="max_event_bytes")
    return entry


def adds_events(command_name: str, command: dict) -> list:
    """The doorbell's interest: (collection, _id) of each document a write adds events to
    (the ``outbox_pending`` mark in the write; _id None when the filter does not name one)."""
    collection = command.get(command_name)
    if command_name == "insert":
        return [(collection, _named(d.get("_id"))) for d in command.get("documents") or [] if d.get(PENDING)]
    if command_name == "update":
        changes = [(u.get("q") or {}, u.get("u") or {}) for u in command.get("updates") or []]
    elif command_name == "findAndModify":
        changes = [(command.get("query") or {}, command.get("update") or {})]
    else:
        return []
    return [(collection, _named(q.get("_id"))) for q, u in changes
            if isinstance(u, dict) and (u.get("$set") or {}).get(PENDING)]


def _named(doc_id):
    """An _id the relay can claim directly; None for a condition ({"$in": ...}) or nothing."""
    return doc_id if isinstance(doc_id, (str, int)) else None


class OutboxRelay:
    def __init__(self, db: AsyncDatabase, collections: Sequence[str], publisher: Publisher,
                 poll_seconds: float = 2.0, doorbell: Doorbell | None = None):
        self.db, self.collections, self.publisher, self.poll_seconds = db, list(collections), publisher, poll_seconds
        self.doorbell = doorbell or Doorbell()  # never rung: the poll alone
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for name in self.collections:
            await self.db[name].create_index([(PENDING, ASCENDING)])
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures, polled = 0, 0.0
        loop = asyncio.get_running_loop()
        while True:
            hinted = self.doorbell.clear()
            # The documents named are this process's; the look-up of every pending one (crashes,
            # other replicas) runs when nothing was named, and at least once per poll period.
            poll = not hinted or loop.time() - polled >= self.poll_seconds
            try:
                sent = await self.relay_once(hinted, poll=poll)
                failures = 0
                polled = loop.time() if poll else polled
            except Exception:  # broker or database away: keep the events, try again later
                failures += 1
                log.exception("outbox relay pass failed", failures=failures)
                sent = 0
                await asyncio.sleep(min(0.2 * 2 ** failures, 10.0))
            if sent < BATCH:  # a full batch means more may be waiting: go on at once
                await self.doorbell.wait(self.poll_seconds)

    async def relay_once(self, hinted: Sequence[tuple[str, object]] = (), poll: bool = True) -> int:
        """One pass; returns how many events were published. ``hinted``: the documents just
        written (the doorbell's), published without looking for them; ``poll``: then every
        pending document too."""
        sent = 0
        for name in self.collections:
            ids = [doc_id for collection, doc_id in hinted if collection == name and doc_id is not None]
            if ids:
                sent += await self._publish(self.db[name], [(doc_id, None) for doc_id in ids], self._read)
            if poll:
                token = new_token()
                pending = [(doc_id, token) for doc_id in await self._pending(self.db[name])]
                sent += await self._publish(self.db[name], pending, self._claim)
        return sent

    async def _pending(self, collection) -> list:
        """The ids of pending documents, the oldest events first (the index finds them)."""
        pending = [d async for d in collection.find({PENDING: True}, {"_id": 1, SINCE: 1})]
        pending.sort(key=lambda d: d.get(SINCE) or datetime.min.replace(tzinfo=UTC))
        _gauge(collection.name, pending)
        return [d["_id"] for d in pending[:BATCH]]

    async def _publish(self, collection, ids: Sequence[tuple], take) -> int:
        """``ids``: (document, the lease token to take it with, or None to read it unleased)."""
        claimed = []
        for doc_id, token in ids:
            entries = await take(collection, doc_id, token)
            if entries:
                claimed.append((doc_id, token, entries))
        try:  # every event appended to the producer in order, then one wait for the broker
            await self.publisher.publish_all([Envelope.from_outbox(e) for *_, entries in claimed for e in entries])
            published = claimed
        except Exception as exc:
            if _retriable(exc):
                raise
            published = await self._one_by_one(collection, claimed)
        for doc_id, token, entries in published:
            await self._remove(collection, doc_id, entries, token)
        return sum(len(entries) for *_, entries in published)

    async def _one_by_one(self, collection, claimed: list[tuple]) -> list[tuple]:
        """The batch failed for good: publish each document's events alone, and park those of a
        document that fail again, so that one bad event holds nothing else up."""
        published = []
        for doc_id, token, entries in claimed:
            try:
                await self.publisher.publish_all([Envelope.from_outbox(e) for e in entries])
                published.append((doc_id, token, entries))
            except Exception as exc:
                if _retriable(exc):
                    raise
                await self._park(collection, doc_id, entries, token, exc)
        return published

    async def _park(self, collection, doc_id, entries: list[dict], token: str | None, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        log.error("outbox events refused for good: parked on their document", collection=collection.name,
                  document=str(doc_id), events=[e.get("id") for e in entries], reason=reason)
        await collection.update_one({"_id": doc_id}, {"$push": {PARKED: {"$each": [{"event": e, "reason": reason}
                                                                                     for e in entries]}}})
        await self._remove(collection, doc_id, entries, token)

    async def _read(self, collection, doc_id, token: None = None) -> list[dict]:
        """A document this process just wrote, read without a lease (a write saved per event):
        another replica sees it only if its poll comes before our removal, and then at worst
        publishes it too, a duplicate that consumers drop by id. One under a lease is left
        to its holder."""
        doc = await collection.find_one({"_id": doc_id, PENDING: True})
        if doc is None or LEASE.lapses(doc) > datetime.now(UTC):
            return []
        return doc.get(OUTBOX) or []

    async def _claim(self, collection, doc_id, token: str) -> list[dict]:
        """Lease the document's outbox so that replicas of the service do not all publish the
        same events; a relay that dies holding a lease lets it lapse, and another takes over."""
        now = datetime.now(UTC)
        claimed = await collection.find_one_and_update(
            {"_id": doc_id, PENDING: True, **LEASE.free(now)}, {"$set": LEASE.fields(now, token)},
            return_document=ReturnDocument.AFTER)  # (FerretDB: no projection)
        if claimed is None:
            return []
        if not claimed.get(OUTBOX):  # published by a relay that died before it cleared the mark
            await self._remove(collection, doc_id, [], token)
        return claimed.get(OUTBOX) or []

    async def _remove(self, collection, doc_id, entries: list[dict], token: str | None) -> None:
        """Remove exactly the entries published: when nothing was appended meanwhile, clear the
        outbox and its mark in one update; else pull them and leave the mark for the rest. The
        lease is let go only by its holder."""
        mine = LEASE.held_by(token) if token else {}
        released = LEASE.released() if token else {}
        cleared = await collection.update_one({"_id": doc_id, OUTBOX: entries, **mine},
                                              {"$unset": {PENDING: "", SINCE: ""}, "$set": {OUTBOX: [], **released}})
        if cleared.matched_count == 0:
            await collection.update_one({"_id": doc_id}, {"$pullAll": {OUTBOX: entries}})
            if token:
                await collection.update_one({"_id": doc_id, **mine}, {"$set": released})


def _gauge(collection: str, pending: list[dict]) -> None:
    """The backlog as this poll found it (oldest first): a look-up the poll makes anyway."""
    since = pending[0].get(SINCE) if pending else None
    OUTBOX_PENDING.labels(collection).set(len(pending))
    OUTBOX_OLDEST_AGE.labels(collection).set((datetime.now(UTC) - since).total_seconds() if since else 0)


def _retriable(exc: Exception) -> bool:
    """The broker away or busy: the same events will go later. Anything else (too large, a
    record that does not parse) would fail the same way every time."""
    return isinstance(exc, (KafkaError, OSError, TimeoutError)) and getattr(exc, "retriable", True)

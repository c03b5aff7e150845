"""The outbox relay: publishes the events each document carries, then removes them.

A crash before the publish leaves the events in the document and they go out on the
next pass; a crash after the publish but before the removal publishes them again, and
consumers drop the duplicate by its CloudEvents id. Nothing is lost either way.

The relay finds pending documents by their indexed ``outbox_pending`` mark, never by a
scan. Its doorbell (cx_shared.doorbell) rings within the process right after a write that
adds events and names the documents, so an event goes out milliseconds after it is stored;
the slow poll only recovers what a crash or another replica left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from cx_shared.doorbell import Doorbell
from cx_shared.envelope import Envelope
from cx_shared.kafka import Publisher
from cx_shared.logging import get_logger
from cx_shared.store import OUTBOX, PENDING, RELAY_LEASE, SINCE

log = get_logger(__name__)
BATCH = 200
LEASE = timedelta(seconds=30)


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
        failures = 0
        while True:
            hinted = self.doorbell.clear()
            try:
                sent = await self.relay_once(hinted)
                failures = 0
            except Exception:  # broker or database away: keep the events, try again later
                failures += 1
                log.exception("outbox relay pass failed", failures=failures)
                sent = 0
                await asyncio.sleep(min(0.2 * 2 ** failures, 10.0))
            if sent < BATCH:  # a full batch means more may be waiting: go on at once
                await self.doorbell.wait(self.poll_seconds)

    async def relay_once(self, hinted: Sequence[tuple[str, object]] = ()) -> int:
        """One pass over every outbox; returns how many events were published. ``hinted``: the
        documents just written (the doorbell's), published first without looking for them."""
        sent = 0
        for name in self.collections:
            ids = [doc_id for collection, doc_id in hinted if collection == name and doc_id is not None]
            if ids:
                sent += await self._publish(self.db[name], ids, self._read)
            sent += await self._publish(self.db[name], await self._pending(self.db[name]), self._claim)
        return sent

    async def _pending(self, collection) -> list:
        """The ids of pending documents, the oldest events first (the index finds them)."""
        pending = [d async for d in collection.find({PENDING: True}, {"_id": 1, SINCE: 1})]
        pending.sort(key=lambda d: d.get(SINCE) or datetime.min.replace(tzinfo=UTC))
        return [d["_id"] for d in pending[:BATCH]]

    async def _publish(self, collection, ids: Sequence, take) -> int:
        claimed = []
        for doc_id in ids:
            entries = await take(collection, doc_id)
            if entries:
                claimed.append((doc_id, entries))
        # Append every event to the producer in order, then wait for the broker once.
        await self.publisher.publish_all([Envelope.from_outbox(e) for _, entries in claimed for e in entries])
        for doc_id, entries in claimed:
            await self._remove(collection, doc_id, entries)
        return sum(len(entries) for _, entries in claimed)

    async def _read(self, collection, doc_id) -> list[dict]:
        """A document this process just wrote, read without a lease (a write saved per event):
        another replica sees it only if its poll comes before our removal, and then at worst
        publishes it too, a duplicate that consumers drop by id. One holding a lease is left
        to its holder."""
        doc = await collection.find_one({"_id": doc_id, PENDING: True})
        if doc is None or (doc.get(RELAY_LEASE) and doc[RELAY_LEASE] > datetime.now(UTC)):
            return []
        return doc.get(OUTBOX) or []

    async def _claim(self, collection, doc_id) -> list[dict]:
        """Lease the document's outbox so that replicas of the service do not all publish the
        same events; a relay that dies holding a lease lets it lapse, and another takes over."""
        now = datetime.now(UTC)
        claimed = await collection.find_one_and_update(
            {"_id": doc_id, PENDING: True, "$or": [{RELAY_LEASE: {"$exists": False}}, {RELAY_LEASE: {"$lt": now}}]},
            {"$set": {RELAY_LEASE: now + LEASE}}, return_document=ReturnDocument.AFTER)  # (FerretDB: no projection)
        if claimed is None:
            return []
        if not claimed.get(OUTBOX):  # published by a relay that died before it cleared the mark
            await self._remove(collection, doc_id, [])
        return claimed.get(OUTBOX) or []

    async def _remove(self, collection, doc_id, entries: list[dict]) -> None:
        """Remove exactly the entries published: when nothing was appended meanwhile, clear the
        outbox and its mark in one update; else pull them and leave the mark for the rest."""
        done = {"$unset": {PENDING: "", SINCE: "", RELAY_LEASE: ""}, "$set": {OUTBOX: []}}
        cleared = await collection.update_one({"_id": doc_id, OUTBOX: entries}, done)
        if cleared.matched_count == 0:
            await collection.update_one({"_id": doc_id}, {"$pullAll": {OUTBOX: entries}, "$unset": {RELAY_LEASE: ""}})

"""The outbox relay: publishes the events each document carries, then removes them.

A crash before the publish leaves the events in the document and they go out on the
next pass; a crash after the publish but before the removal publishes them again, and
consumers drop the duplicate by its CloudEvents id. Nothing is lost either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from cx_shared.envelope import Envelope
from cx_shared.kafka import Publisher
from cx_shared.logging import get_logger
from cx_shared.store import OUTBOX, RELAY_LEASE

log = get_logger(__name__)
BATCH = 100
LEASE = timedelta(seconds=30)


class OutboxRelay:
    def __init__(self, db: AsyncDatabase, collections: Sequence[str], publisher: Publisher,
                 poll_seconds: float = 0.2):
        self.db, self.collections, self.publisher, self.poll_seconds = db, collections, publisher, poll_seconds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                sent = await self.relay_once()
                failures = 0
            except Exception:  # broker or database away: keep the events, try again later
                failures += 1
                log.exception("outbox relay pass failed", failures=failures)
                sent = 0
            if not sent:
                # backing off after failures, up to 10 s (or the poll itself, when it is longer)
                await asyncio.sleep(min(self.poll_seconds * 2 ** failures, max(10.0, self.poll_seconds)))

    async def relay_once(self) -> int:
        """One pass over every outbox; returns how many events were published."""
        sent = 0
        for name in self.collections:
            collection = self.db[name]
            async for doc in collection.find({f"{OUTBOX}.0": {"$exists": True}}, {"_id": 1}).limit(BATCH):
                entries = await self._claim(collection, doc["_id"])
                for entry in entries:
                    await self.publisher.publish(Envelope.from_outbox(entry))
                # $pullAll with the exact entries read: ones appended meanwhile stay for the next pass.
                await collection.update_one({"_id": doc["_id"]},
                                            {"$pullAll": {OUTBOX: entries}, "$unset": {RELAY_LEASE: ""}})
                sent += len(entries)
        return sent

    async def _claim(self, collection, doc_id) -> list[dict]:
        """Lease the document's outbox so that replicas of the service do not all publish the
        same events; a relay that dies holding a lease lets it lapse, and another takes over."""
        now = datetime.now(UTC)
        claimed = await collection.find_one_and_update(
            {"_id": doc_id, "$or": [{RELAY_LEASE: {"$exists": False}}, {RELAY_LEASE: {"$lt": now}}]},
            {"$set": {RELAY_LEASE: now + LEASE}}, return_document=ReturnDocument.AFTER)  # (FerretDB: no projection)
        return claimed[OUTBOX] if claimed else []

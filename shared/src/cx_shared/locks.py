"""Short exclusive locks across replicas, for a check that reads several documents and then
writes one (a host's remaining capacity, a visitor's other exchanges).

MongoDB 8 and FerretDB both make a unique-key insert atomic, so a lock is a document whose
``_id`` is its name: whoever inserts it holds it. It carries the lease of ``cx_shared.lease``:
a holder that dies lets it lapse after ``lease_seconds`` and the next caller takes it over with
one conditional update. Several names are taken in sorted order, so two callers never wait on
each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from cx_shared.errors import Busy
from cx_shared.lease import Lease, new_token


class Locks:
    def __init__(self, collection: AsyncCollection, *, lease_seconds: float = 15.0, wait_seconds: float = 10.0,
                 poll_seconds: float = 0.02):
        self.collection = collection
        self.lease = Lease(lease_seconds, token="token", until="lease_until")
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds

    @asynccontextmanager
    async def hold(self, *names: str) -> AsyncIterator[None]:
        """Hold every named lock for the block; Busy (503) if one stays taken `wait_seconds`."""
        token, held = new_token(), []
        try:
            for name in sorted(set(names)):
                await self._take(name, token)
                held.append(name)
            yield
        finally:
            for name in held:  # only our own: a lapsed lease may have been taken over since
                await self.collection.delete_one({"_id": name, **self.lease.held_by(token)})

    async def _take(self, name: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            now = datetime.now(UTC)
            held = self.lease.fields(now, token)
            try:
                await self.collection.insert_one({"_id": name, **held})
                return
            except DuplicateKeyError:
                lapsed = await self.collection.update_one({"_id": name, **self.lease.free(now)}, {"$set": held})
                if lapsed.modified_count == 1:
                    return
            if loop.time() > deadline:
                raise Busy(f"{name} is being changed by another request; try again in a moment")
            await asyncio.sleep(self.poll_seconds)

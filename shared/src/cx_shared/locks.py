"""Short exclusive locks across replicas, for a check that reads several documents and then
writes one (a host's remaining capacity, a visitor's other exchanges).

MongoDB 8 and FerretDB both make a unique-key insert atomic, so a lock is a document whose
``_id`` is its name: whoever inserts it holds it. It carries the lease of ``cx_shared.lease``:
a holder that dies lets it lapse after ``lease_seconds`` and the next caller takes it over with
one conditional update. Several names are taken in sorted order, so two callers never wait on
each other. Callers in one process queue for a name in memory first, so that only the first of
them tries the database: the others wait their turn without a round trip every `poll_seconds`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
        self._queues: dict[str, tuple[asyncio.Lock, int]] = {}  # name -> (its queue here, callers in it)

    @asynccontextmanager
    async def hold(self, *names: str) -> AsyncIterator[None]:
        """Hold every named lock for the block; Busy (503) if one stays taken `wait_seconds`."""
        token, held = new_token(), []
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        async with AsyncExitStack() as queued:
            try:
                for name in sorted(set(names)):
                    await queued.enter_async_context(self._first_here(name, deadline))
                    await self._take(name, token, deadline)
                    held.append(name)
                yield
            finally:
                for name in held:  # only our own: a lapsed lease may have been taken over since
                    await self.collection.delete_one({"_id": name, **self.lease.held_by(token)})

    @asynccontextmanager
    async def _first_here(self, name: str, deadline: float) -> AsyncIterator[None]:
        """Wait for this process's earlier callers of `name`; the entry goes with its last caller."""
        queue, callers = self._queues.get(name) or (asyncio.Lock(), 0)
        self._queues[name] = (queue, callers + 1)
        try:
            try:
                await asyncio.wait_for(queue.acquire(), max(deadline - asyncio.get_running_loop().time(), 0.001))
            except TimeoutError:
                raise _busy(name) from None
            try:
                yield
            finally:
                queue.release()
        finally:
            queue, callers = self._queues[name]
            if callers == 1:
                del self._queues[name]
            else:
                self._queues[name] = (queue, callers - 1)

    async def _take(self, name: str, token: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
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
                raise _busy(name)
            await asyncio.sleep(self.poll_seconds)


def _busy(name: str) -> Busy:
    return Busy(f"{name} is being changed by another request; try again in a moment")

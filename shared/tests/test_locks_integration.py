"""Short exclusive locks on the real database: one holder at a time, a dead holder's lease
lapses, and a lock that stays taken answers Busy instead of waiting for ever."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cx_shared.errors import Busy
from cx_shared.locks import Locks

pytestmark = pytest.mark.infra


async def test_holders_of_one_name_never_overlap(mongo_db):
    locks = Locks(mongo_db.locks)
    inside, most, order = 0, 0, []

    async def critical(n: int):
        nonlocal inside, most
        async with locks.hold("offer:o-1", f"visitor:v-{n}"):
            inside += 1
            most = max(most, inside)
            order.append(n)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(critical(n) for n in range(12)))
    assert most == 1 and sorted(order) == list(range(12))
    assert await mongo_db.locks.count_documents({}) == 0  # every lock released


async def test_a_dead_holders_lease_lapses_and_a_live_one_makes_others_busy(mongo_db):
    locks = Locks(mongo_db.locks, lease_seconds=30, wait_seconds=0.3)
    await mongo_db.locks.insert_one({"_id": "offer:dead", "token": "gone",
                                     "lease_until": datetime.now(UTC) - timedelta(seconds=1)})
    replica = Locks(mongo_db.locks, lease_seconds=30, wait_seconds=0.3)  # another process's
    async with locks.hold("offer:dead"):
        assert (await mongo_db.locks.find_one({"_id": "offer:dead"}))["token"] != "gone"
        for caller in (replica, locks):  # another replica (the database's lock), this process (its queue)
            with pytest.raises(Busy) as refused:
                async with caller.hold("offer:dead"):
                    pass
        assert refused.value.status == 503 and "offer:dead" in refused.value.detail
    assert await mongo_db.locks.count_documents({}) == 0


class CountedInserts:
    """The locks collection, counting the inserts made to it (each is a round trip)."""

    def __init__(self, collection):
        self.collection, self.inserts = collection, 0

    async def insert_one(self, doc):
        self.inserts += 1
        return await self.collection.insert_one(doc)

    def __getattr__(self, name):
        return getattr(self.collection, name)


async def test_callers_in_one_process_queue_in_memory_not_in_the_database(mongo_db):
    counted = CountedInserts(mongo_db.locks)
    locks = Locks(counted, poll_seconds=0.005)
    inside, most = 0, 0

    async def critical():
        nonlocal inside, most
        async with locks.hold("offer:o-busy"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(critical() for _ in range(10)))
    assert most == 1
    assert counted.inserts == 10  # one insert per holder: none of them polled the database while waiting
    assert locks._queues == {}  # the queue of a name goes with its last caller

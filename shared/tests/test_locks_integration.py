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
    async with locks.hold("offer:dead"):
        assert (await mongo_db.locks.find_one({"_id": "offer:dead"}))["token"] != "gone"
        with pytest.raises(Busy) as refused:
            async with locks.hold("offer:dead"):
                pass
        assert refused.value.status == 503 and "offer:dead" in refused.value.detail
    assert await mongo_db.locks.count_documents({}) == 0

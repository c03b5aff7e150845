"""What notifications keeps in memory: the routing table's refresh and the bounded recent values."""

import asyncio

from notifications.memory import Recent, Routes


class Table:
    """The subscriptions a load returns, and how many loads there were."""

    def __init__(self, *subscriptions: dict):
        self.subscriptions, self.loads = list(subscriptions), 0
        self.during_load = None  # called while a load is in flight

    async def load(self) -> list[dict]:
        self.loads += 1
        found = list(self.subscriptions)
        if self.during_load:
            self.during_load()
            await asyncio.sleep(0)
        return found


SCOPED = {"_id": "s1", "partnership_ids": ["p1"], "programme_wide": False}
WIDE = {"_id": "s2", "partnership_ids": [], "programme_wide": True}


async def test_routes_are_the_programme_wide_and_the_partnerships_own():
    routes = Routes(Table(SCOPED, WIDE).load, 1.0)
    assert [s["_id"] for s in await routes.hearing_of("p1")] == ["s1", "s2"]
    assert [s["_id"] for s in await routes.hearing_of("p2")] == ["s2"]
    assert [s["_id"] for s in await routes.hearing_of(None)] == ["s2"]


async def test_routes_reload_after_a_local_change_and_after_the_refresh_period():
    now = [0.0]
    table = Table(SCOPED)
    routes = Routes(table.load, 1.0, clock=lambda: now[0])
    await routes.hearing_of("p1")
    table.subscriptions.append(WIDE)  # made through another replica
    assert [s["_id"] for s in await routes.hearing_of("p9")] == []  # not heard yet
    now[0] = 1.5
    assert [s["_id"] for s in await routes.hearing_of("p9")] == ["s2"]
    table.subscriptions.remove(WIDE)
    routes.changed()  # made through this process: heard at once
    assert await routes.hearing_of("p9") == []
    assert table.loads == 3


async def test_a_load_that_overlapped_a_change_is_not_trusted():
    table = Table(SCOPED)
    routes = Routes(table.load, 60.0)
    table.during_load = routes.changed  # a change lands while the table is being read
    await routes.hearing_of("p1")
    table.during_load = None
    await routes.hearing_of("p1")
    assert table.loads == 2


def test_recent_keeps_the_most_recently_used_up_to_its_size():
    recent = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    recent.get("a")
    recent.put("c", 3)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (1, None, 3)
    assert recent.pop("a") == 1 and recent.get("a") is None


async def test_fresh_values_are_trusted_for_their_seconds_and_forgotten_on_a_local_change():
    from notifications.memory import Fresh

    now, stored, reads = [0.0], {"org": "old contact"}, []

    async def load():
        reads.append(now[0])
        return stored["org"]

    fresh = Fresh(1.0, clock=lambda: now[0])
    assert await fresh.read("org", load) == "old contact"
    stored["org"] = "new contact"  # changed through another replica
    assert await fresh.read("org", load) == "old contact"
    now[0] = 1.2
    assert await fresh.read("org", load) == "new contact"
    stored["org"] = "newest contact"
    fresh.forget("org")  # changed through this process
    assert await fresh.read("org", load) == "newest contact"
    assert reads == [0.0, 1.2, 1.2]


async def test_a_fresh_read_that_overlapped_a_change_is_not_kept():
    from notifications.memory import Fresh

    fresh, reads = Fresh(60.0), []

    async def load():
        reads.append(1)
        fresh.forget("other")  # a change lands while the value is read
        return None  # None (no opt-out, say) is a value like any other

    assert await fresh.read("org", load) is None
    assert await fresh.read("org", load) is None
    assert len(reads) == 2

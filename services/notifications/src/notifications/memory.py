"""What the service keeps in memory to spare the database a read per event.

Every event the service consumes (about fifteen per exchange, its own email events included)
is offered to webhook subscribers and most are about an application: looking both up in the
database each time was three reads or more per event, the largest share of the service's
database work in `make bench`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any


class Routes:
    """The active webhook subscriptions, for routing events to them: a ``Fresh`` memory of one
    value, reloaded (one indexed query) after a change made through this process, and otherwise
    at most every ``refresh_seconds``: a change made through another replica is heard within that
    time. One load at a time: the events that need it meanwhile wait for it instead of each
    loading the table."""

    def __init__(self, load: Callable[[], Awaitable[list[dict]]], refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._load, self._memory, self._lock = load, Fresh(refresh_seconds, size=1, clock=clock), asyncio.Lock()

    def changed(self) -> None:
        self._memory.forget(ACTIVE)

    async def hearing_of(self, partnership_id: str | None) -> list[dict]:
        """The programme-wide subscriptions, and those of ``partnership_id`` when there is one."""
        async with self._lock:
            subscriptions = await self._memory.read(ACTIVE, self._load)
        return [s for s in subscriptions
                if s.get("programme_wide") or (partnership_id is not None
                                               and partnership_id in (s.get("partnership_ids") or ()))]


ACTIVE = "active subscriptions"


class Recent:
    """The most recently used of values that never change once stored (an application's
    snapshot at submission, a call's partnership), up to ``size`` of them."""

    def __init__(self, size: int):
        self.size = size
        self._docs: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
        return doc

    def put(self, key: Any, doc: Any) -> None:
        self._docs[key] = doc
        self._docs.move_to_end(key)
        while len(self._docs) > self.size:
            self._docs.popitem(last=False)

    def pop(self, key: Any) -> Any:
        return self._docs.pop(key, None)


class Fresh:
    """Values read from the database (read models that may change: an organisation's contact, a
    partnership's staff, a call, an address's opt-out), trusted for ``seconds`` after the read,
    up to ``size`` of them. A change made through this process forgets the value at once; one
    made through another replica is seen here within ``seconds``. Events of different keys have
    no order between them anyway (an exchange's email may be planned before or after its
    visitor's new contact arrives): a second of memory changes none of that."""

    def __init__(self, seconds: float, size: int = 8192, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.size, self._clock = seconds, size, clock
        self._values: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._generation = 0  # bumped by every change: a read that overlapped one is not kept

    async def read(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        held = self._values.get(key)
        if held is not None and self._clock() - held[0] < self.seconds:
            return held[1]
        generation, started = self._generation, self._clock()
        value = await load()
        if generation == self._generation and self.seconds > 0:
            self._values[key] = (started, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def forget(self, key: Any) -> None:
        self._generation += 1
        self._values.pop(key, None)

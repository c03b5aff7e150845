"""The one retry policy for races: load, decide, store only if nothing changed meanwhile;
on a lost race load and decide again.

Every service stores a change with a condition on what it read (a revision, a sequence
number, a unique ``_id``). A writer that loses raises ``LostRace`` and ``until_stored``
runs the whole step again after a short random pause, so racing replicas spread out
instead of colliding again in lock step.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from cx_shared.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")
ATTEMPTS = 200


class LostRace(Exception):
    """Another writer changed what this decision was based on: decide again."""


class Contention(RuntimeError):
    """Still losing after every attempt; the caller fails (a consumer retries the event)."""


class Turns:
    """Writers of one process that change the same document take turns: racing each other on
    its compare-and-set would only make all but one of them decide in vain. Replicas still
    race, and the compare-and-set settles that. A lock lives as long as someone holds it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()

    def of(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


async def until_stored(step: Callable[[], Awaitable[T]], *, what: str, attempts: int = ATTEMPTS) -> T:
    for attempt in range(attempts):
        try:
            return await step()
        except LostRace:
            # pauses grow to at most ~20 ms: enough to let the winner finish, short for the burst
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
    log.warning("kept losing the race", what=what, attempts=attempts)
    raise Contention(f"{what} kept changing over {attempts} attempts")

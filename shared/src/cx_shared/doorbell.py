"""Wake a worker right after a write that gives it work, instead of polling fast.

A worker (the outbox relay, the mailer, the webhook dispatcher) waits on its ``Doorbell``
with a slow timeout; ``Doorbells``, a PyMongo command listener on the service's client,
rings a doorbell when a write it cares about has succeeded, and hands it the ids of the
documents written, when the write names them. Only writes that bring work ring (for the
relay: writes that add outbox events), never the worker's own bookkeeping, which would
wake it in a loop. Writes by other replicas are not seen here: the slow timeout is the
fallback for them and for crashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.monitoring import CommandListener

# (command name, command) -> the ids of the documents it gives work for (possibly [None]), or []
Interest = Callable[[str, Mapping[str, Any]], list[Any]]


class Doorbell:
    def __init__(self) -> None:
        self._rung = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids: list[Any] = []

    def ring(self, ids: list[Any]) -> None:
        """Thread-safe: PyMongo may report a command from another thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._rang, ids)

    def _rang(self, ids: list[Any]) -> None:
        self._ids.extend(i for i in ids if i is not None)
        self._rung.set()

    def clear(self) -> list[Any]:
        """Before looking for work: returns the ids rung for since the last clear; a write after
        this moment rings again."""
        self._loop = asyncio.get_running_loop()
        self._rung.clear()
        ids, self._ids = self._ids, []
        return list(dict.fromkeys(ids))

    async def wait(self, timeout: float) -> bool:
        """Until rung (True), or ``timeout`` seconds, the fallback poll (False)."""
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._rung.wait(), timeout)
            return True
        except TimeoutError:
            return False


def inserts(command_name: str, command: Mapping[str, Any]) -> list[Any]:
    """Interest in new documents (a queue's new items)."""
    return [d.get("_id") for d in command.get("documents") or []] if command_name == "insert" else []


class Doorbells(CommandListener):
    """Rings, after a successful write to a collection of ``database``, the doorbells whose
    interest the command meets."""

    def __init__(self, database: str):
        self.database = database
        self._bells: dict[str, list[tuple[Doorbell, Interest]]] = {}
        self._pending: dict[int, list[tuple[Doorbell, list[Any]]]] = {}

    def doorbell(self, *collections: str, interest: Interest = inserts) -> Doorbell:
        bell = Doorbell()
        for name in collections:
            self._bells.setdefault(name, []).append((bell, interest))
        return bell

    def started(self, event) -> None:
        if event.database_name != self.database:
            return
        bells = self._bells.get(event.command.get(event.command_name)) if self._bells else None
        rings = [(bell, ids) for bell, interest in bells or () if (ids := interest(event.command_name, event.command))]
        if rings:
            self._pending[event.request_id] = rings

    def succeeded(self, event) -> None:
        for bell, ids in self._pending.pop(event.request_id, None) or ():
            bell.ring(ids)

    def failed(self, event) -> None:
        self._pending.pop(event.request_id, None)

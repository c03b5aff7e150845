"""Contracts that exist only inside a test: a synthetic new version of an event, to show a
migration. Defining a contract registers it for the whole process; this takes it out again,
so the catalog and the other tests never see it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cx_shared import events


@contextmanager
def synthetic_contract(define: Callable[[], type[events.Event]]) -> Iterator[type[events.Event]]:
    cls = define()
    try:
        yield cls
    finally:
        events._REGISTRY.pop(cls.ce_type(), None)  # the registry's only other writer is the class definition

"""A document that many concurrent events change (a call's budget envelope), at a cost that
does not grow with how many have changed it.

Each change is a compare-and-set on ``seq``: the update lands only if ``seq`` is still the
one that was read, else ``LostRace`` (see ``races.until_stored``). The ids of the events
behind the last ``RING`` changes stay in a fixed ring of slots, ``causes.<seq % RING>``, so a
redelivered event that already changed the document is recognised while the document keeps
the same size for ever. A redelivery comes from the consumer's uncommitted offsets, far fewer
than ``RING`` changes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.races import LostRace
from cx_shared.store import change

RING = 128
SEQ, CAUSES = "seq", "causes"


def applied(doc: Mapping[str, Any], cause: str | None) -> bool:
    """Whether the event ``cause`` already changed this document."""
    return cause is not None and cause in (doc.get(CAUSES) or {}).values()


class Forgotten(Exception):
    """More than ``RING`` changes followed the one asked about: the ring no longer tells."""


def landed(doc: Mapping[str, Any], seq: int, cause: str) -> bool | None:
    """Whether the change decided on this document at ``seq`` for ``cause`` was stored: None
    while the document has not moved past ``seq`` (it still can be), else whether the ring names
    ``cause`` at that seq; Forgotten when the ring has been overwritten since."""
    now = doc.get(SEQ, 0)
    if now <= seq:
        return None
    if now - seq > RING:
        raise Forgotten(f"{doc['_id']} is {now - seq} changes past seq {seq}, more than the ring keeps")
    return (doc.get(CAUSES) or {}).get(str(seq % RING)) == cause


def compare_and_set(doc: Mapping[str, Any], update: Mapping[str, Any], *, cause: str | None,
                    events: Iterable[Envelope] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) that applies ``update`` (its ``$set``/``$inc``...) to ``doc`` as read,
    moves ``seq`` on, remembers ``cause`` in the ring and appends ``events`` to the outbox."""
    seq = doc.get(SEQ, 0)
    result = {op: dict(fields) for op, fields in update.items()}
    result.setdefault("$set", {})[SEQ] = seq + 1
    if cause is not None:
        result["$set"][f"{CAUSES}.{seq % RING}"] = cause
    return {"_id": doc["_id"], SEQ: seq}, change(result, events=events)


async def store(collection, doc: Mapping[str, Any], update: Mapping[str, Any], *, cause: str | None,
                events: Iterable[Envelope] = ()) -> None:
    """Apply the change, or raise LostRace when someone changed the document since it was read."""
    filter_, full = compare_and_set(doc, update, cause=cause, events=events)
    result = await collection.update_one(filter_, full)
    if result.matched_count != 1:
        raise LostRace(f"{collection.name} {doc['_id']} moved past seq {doc.get(SEQ, 0)}")

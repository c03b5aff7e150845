"""One lease, for everything that several replicas (or workers of one) must not do at once: a
named lock (`cx_shared.locks`), an outbox being published (`cx_shared.outbox`), a queue item
being worked on (notifications' emails, webhook deliveries and reminders).

A lease is two fields of the leased document: a token naming the holder, and the time the
lease lapses. Whoever writes them, on the condition that the lease is free, holds it: one
conditional single-document write, atomic on MongoDB and on FerretDB behind its write proxy.
A holder that dies lets the lease lapse and the next taker takes over with the same write.
Only the holder (its token in the filter) acts as the holder or releases it, so a holder whose
lease lapsed and was taken over changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a lease that is free (lapsed long ago)


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Lease:
    seconds: float
    token: str = "lease_token"
    until: str = "lease_until"

    def free(self, now: datetime) -> dict[str, Any]:
        """Filter: nobody holds it (never leased, released, or lapsed)."""
        return {"$or": [{self.until: {"$exists": False}}, {self.until: {"$lte": now}}]}

    def held_by(self, token: str) -> dict[str, Any]:
        """Filter: `token` holds it (or held it, and nobody took it over since)."""
        return {self.token: token}

    def fields(self, now: datetime, token: str) -> dict[str, Any]:
        """What to `$set` (or insert) to hold it from `now`."""
        return {self.token: token, self.until: now + timedelta(seconds=self.seconds)}

    def released(self) -> dict[str, Any]:
        """What to `$set` to let it go."""
        return {self.token: None, self.until: EPOCH}

    def lapses(self, doc: dict[str, Any]) -> datetime:
        return doc.get(self.until) or EPOCH

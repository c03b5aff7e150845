"""The service's "now": real time plus a configurable offset, so tests and demos can let
days pass (reminders) without waiting for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, offset_seconds: float = 0.0):
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        # Millisecond precision: what BSON dates keep, so a stored time compares equal to ours.
        now = datetime.now(UTC) + self.offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

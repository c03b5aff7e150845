"""The report deadline watcher: a background task that escalates missing reports.

Due dates live in the read model (report_due_on, set at departure), so the watcher survives
restarts and any replica may run it: the escalation is one conditional update of the
exchange (checked against its revision), so two watchers raise ReportOverdue once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ReportOverdue
from cx_shared.logging import get_logger

from applications import documents, followup
from applications.settings import Settings
from applications.storage import Storage

log = get_logger(__name__)


class NotOverdue(Exception):
    """The exchange moved on (a report arrived, another watcher escalated) since it was read."""


def follow_up_today(settings: Settings) -> date:
    return (datetime.now(UTC) + timedelta(seconds=settings.clock_offset_seconds)).date()


async def escalate_overdue(storage: Storage, settings: Settings, today: date) -> list[str]:
    """Raise ReportOverdue for every exchange whose report is missing after its due date."""
    escalated = []
    for doc in await storage.overdue_candidates(today):
        event = ReportOverdue(application_id=doc["_id"], call_id=doc["call_id"],
                              due_on=date.fromisoformat(doc["report_due_on"]), detected_on=today)
        envelope = Envelope.wrap(event, source=settings.source, subject=doc["_id"], correlation_id=str(uuid.uuid4()))

        def check(current: dict) -> None:
            if not followup.is_overdue(current, today):
                raise NotOverdue(current["_id"])
        try:
            await storage.fold_event(doc["_id"], documents.entry(envelope), event_id=envelope.id,
                                     events=(envelope,), check=check)
        except NotOverdue:
            continue
        log.info("report overdue: escalated", application_id=doc["_id"], due_on=doc["report_due_on"])
        escalated.append(doc["_id"])
    return escalated


def overdue_watcher(settings: Settings):
    async def watch_report_deadlines(storage: Storage, doorbells: object = None) -> None:
        while True:
            try:
                await escalate_overdue(storage, settings, follow_up_today(settings))
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: try again at the next poll
                log.exception("overdue report check failed")
            await asyncio.sleep(settings.overdue_poll_seconds)
    return watch_report_deadlines

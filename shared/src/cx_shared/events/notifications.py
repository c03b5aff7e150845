"""Contracts published by the notifications service on cx.notifications.v1."""

from __future__ import annotations

from cx_shared.events import Event
from cx_shared.events.common import ErasureReport, ExportPart
from cx_shared.topics import NOTIFICATIONS


class EmailSent(Event, name="email.sent", topic=NOTIFICATIONS):
    notification_id: str
    application_id: str | None = None
    cause_event_id: str
    cause_event_type: str
    recipient_role: str
    language: str
    template: str


class EmailFailed(EmailSent, name="email.failed", topic=NOTIFICATIONS):
    error: str


class NotificationsErasureReported(ErasureReport, name="personal_data.erasure_reported.notifications",
                                   topic=NOTIFICATIONS):
    """What notifications erased of the subject (contacts, mail log, webhook deliveries, parked events, opt-outs)."""


class NotificationsExported(ExportPart, name="personal_data.exported.notifications", topic=NOTIFICATIONS):
    """What notifications holds of the subject."""

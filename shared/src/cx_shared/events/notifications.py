"""Contracts published by the notifications service on cx.notifications.v1."""

from __future__ import annotations

from cx_shared.events import Event
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

"""Assembly of the notifications service: the one place that wires handlers, storage, API and
the background loops (mailer, webhook dispatcher, reminder scheduler, retention sweeper)."""

from cx_shared.service import Service

from notifications import api
from notifications.handlers import HANDLERS
from notifications.settings import Settings
from notifications.storage import OUTBOX_COLLECTIONS, Storage
from notifications.workers import mailer, reminder_scheduler, retention_sweeper, webhook_dispatcher

settings = Settings()
service = Service(
    settings,
    title="notifications",
    description="Everyone in an exchange hears what concerns them, once, in their language (email); "
                "other systems subscribe to exchange events over signed webhooks; reminders on schedule.",
    handlers=HANDLERS,
    storage=lambda db: Storage(db, settings),
    outbox_collections=OUTBOX_COLLECTIONS,
    key_ring=True,
    routers=[api.router],
    background=[mailer, webhook_dispatcher, reminder_scheduler, retention_sweeper],
)
app = service.app()

"""Assembly of the notifications service: the one place that wires handlers, storage and API."""

from cx_shared.service import Service

from notifications import api
from notifications.handlers import HANDLERS
from notifications.settings import Settings
from notifications.storage import OUTBOX_COLLECTIONS, Storage

settings = Settings()
service = Service(
    settings,
    title="notifications",
    description=__doc__ or "",
    handlers=HANDLERS,
    storage=Storage,
    outbox_collections=OUTBOX_COLLECTIONS,
    routers=[api.router],
)
app = service.app()

"""Assembly of the applications service: the one place that wires handlers, storage and API."""

from cx_shared.service import Service

from applications import api
from applications.handlers import HANDLERS
from applications.settings import Settings
from applications.storage import OUTBOX_COLLECTIONS, Storage

settings = Settings()
service = Service(
    settings,
    title="applications",
    description=__doc__ or "",
    handlers=HANDLERS,
    storage=Storage,
    outbox_collections=OUTBOX_COLLECTIONS,
    routers=[api.router],
)
app = service.app()

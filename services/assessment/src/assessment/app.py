"""Assembly of the assessment service: the one place that wires handlers, storage and API."""

from cx_shared.service import Service

from assessment import api
from assessment.handlers import HANDLERS
from assessment.settings import Settings
from assessment.storage import OUTBOX_COLLECTIONS, Storage

settings = Settings()
service = Service(
    settings,
    title="assessment",
    description=__doc__ or "",
    handlers=HANDLERS,
    storage=Storage,
    outbox_collections=OUTBOX_COLLECTIONS,
    key_ring=True,  # to seal its part of an export
    routers=[api.router],
)
app = service.app()

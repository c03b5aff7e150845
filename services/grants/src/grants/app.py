"""Assembly of the grants service: the one place that wires handlers, storage and API."""

from cx_shared.geography import load_gazetteer
from cx_shared.service import Service

from grants import api
from grants.handlers import HANDLERS
from grants.settings import Settings
from grants.storage import OUTBOX_COLLECTIONS, Storage


settings = Settings()
service = Service(
    settings,
    title="grants",
    description=__doc__ or "",
    handlers=HANDLERS,
    storage=Storage,
    outbox_collections=OUTBOX_COLLECTIONS,
    key_ring=True,  # to seal its part of an export
    routers=[api.router],
    background=[load_gazetteer],
)
app = service.app()

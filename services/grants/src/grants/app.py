"""Assembly of the grants service: the one place that wires handlers, storage and API."""

import asyncio

from cx_shared.service import Service

from grants import api
from grants.geography import warm_up
from grants.handlers import HANDLERS
from grants.settings import Settings
from grants.storage import OUTBOX_COLLECTIONS, Storage


async def load_gazetteer(storage: Storage) -> None:
    """Load the city gazetteer off the event loop at start-up, not on the first application."""
    await asyncio.to_thread(warm_up)


settings = Settings()
service = Service(
    settings,
    title="grants",
    description=__doc__ or "",
    handlers=HANDLERS,
    storage=Storage,
    outbox_collections=OUTBOX_COLLECTIONS,
    routers=[api.router],
    background=[load_gazetteer],
)
app = service.app()

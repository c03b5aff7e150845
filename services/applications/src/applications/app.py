"""ClusterXchange applications: enrolment of visitors and hosts, partnerships, calls and host
offers, applications, and each exchange's status and timeline folded from every lifecycle event.

(Assembly: the one place that wires handlers, storage and API; this text is the service's
OpenAPI and AsyncAPI description.)
"""

from cx_shared.geography import load_gazetteer
from cx_shared.service import Service

from applications import api, calls_api, indicators_api, personal_data_api
from applications.handlers import HANDLERS
from applications.overdue import overdue_watcher
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
    routers=[api.router, calls_api.router, indicators_api.router, personal_data_api.router],
    key_ring=True,
    background=[overdue_watcher(settings), load_gazetteer],
)
app = service.app()

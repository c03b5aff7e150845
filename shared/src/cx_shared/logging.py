"""structlog JSON logs; the correlation id of the event or request is bound per task.

Access logs name the path, never the query string: a query may carry what must not be kept
(a one-time link, an address, a token someone pasted).
"""

from __future__ import annotations

import logging
import sys

import structlog

bind_contextvars = structlog.contextvars.bind_contextvars
clear_contextvars = structlog.contextvars.clear_contextvars


class WithoutQuery(logging.Filter):
    """Cuts the query string off the path in uvicorn's access log records
    ('%s - "%s %s HTTP/%s" %d': client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5 and isinstance(record.args[2], str):
            client, method, path, version, status = record.args
            record.args = (client, method, path.split("?", 1)[0], version, status)
        return True


WITHOUT_QUERY = WithoutQuery()


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format="%(message)s", force=True)
    logging.getLogger("uvicorn.access").addFilter(WITHOUT_QUERY)  # the same filter is added once
    # httpx logs every request's full URL at INFO (webhook targets, their query strings).
    for noisy in ("aiokafka", "pymongo", "faststream", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None):
    return structlog.get_logger(name)

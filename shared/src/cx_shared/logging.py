"""structlog JSON logs; the correlation id of the event or request is bound per task.

Access logs name the path, never the query string: a query may carry what must not be kept
(a one-time link, an address, a token someone pasted); and a path segment that is a credential
(an unsubscribe or confirmation link's token: the segment after one of SECRET_SEGMENTS) is
logged as ``{token}``.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

bind_contextvars = structlog.contextvars.bind_contextvars
clear_contextvars = structlog.contextvars.clear_contextvars


# Links mailed to people carry their credential in the path (RFC 8058's one-click unsubscribe
# needs it in the URL itself): the segment after these is never logged nor traced.
SECRET_SEGMENTS = ("unsubscribe", "confirmations")
_SECRET = re.compile(rf"(/(?:{'|'.join(SECRET_SEGMENTS)}))/[^/?#]+")


def redacted(path: str) -> str:
    """A path or URL as it may be kept: no query string, no credential segment."""
    return _SECRET.sub(r"\1/{token}", path.split("?", 1)[0])


class WithoutQuery(logging.Filter):
    """Cuts the query string and credential segments off the path in uvicorn's access log records
    ('%s - "%s %s HTTP/%s" %d': client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5 and isinstance(record.args[2], str):
            client, method, path, version, status = record.args
            record.args = (client, method, redacted(path), version, status)
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

"""Prometheus metrics of every service, with prometheus-client (one registry per process),
served at `/metrics` in the text format.

What FastStream's Prometheus middleware can see it counts (`faststream_received_*`: records per
batch and the batch's handling time, by topic). It sees neither the event types inside a batch
(the consumer decodes the envelopes) nor what is published (the outbox relay writes with its own
aiokafka producer), so those are counted here, where they happen: by the consumer, the relay and
the dead-letter path, labelled by CloudEvents type. Label values come only from the code (route
templates, contract types, collection names, reasons), never from what a client or a record says,
so their number stays bounded and no id or secret reaches a label.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable

from aiokafka.structs import TopicPartition
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cx_shared.events import event_class

HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered, by route template and status", ["route", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time to answer an HTTP request", ["route", "status"])
CONSUMED = Counter("cx_events_consumed", "Events handled by this service's consumer, by type and outcome",
                   ["event_type", "outcome"])
HANDLER_DURATION = Histogram("cx_handler_duration_seconds", "Time a handler took for one event (retries included)",
                             ["event_type"])
PUBLISHED = Counter("cx_events_published", "Events the outbox relay published (broker acknowledged), by type",
                    ["event_type"])
DEAD_LETTERS = Counter("cx_dead_letters", "Records this service sent to the dead-letter topic, by reason and type",
                       ["reason", "event_type"])
CONSUMER_LAG = Gauge("cx_consumer_lag", "Records behind the partition's end, as of the last batch taken from it",
                     ["topic", "partition"])
OUTBOX_PENDING = Gauge("cx_outbox_pending", "Documents with unpublished events, as of the relay's last poll",
                       ["collection"])
OUTBOX_OLDEST_AGE = Gauge("cx_outbox_oldest_age_seconds",
                          "Age of the oldest unpublished event, as of the relay's last poll (0: none)", ["collection"])


def known_type(ce_type: str | None) -> str:
    """A label for an event type: a contract's, or `unknown` (a record's header is not trusted)."""
    return ce_type if ce_type and event_class(ce_type) is not None else "unknown"


@functools.cache
def faststream_middleware() -> KafkaPrometheusMiddleware:
    """Once per process: its metrics are registered in the process's registry."""
    return KafkaPrometheusMiddleware(registry=REGISTRY)


def observe_lag(consumer, records: Iterable) -> None:
    """How far each partition of a batch is behind, from the highwater mark the fetch brought
    along (no request to the broker)."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    for (topic, partition), offset in last.items():
        highwater = consumer.highwater(TopicPartition(topic, partition))
        if highwater is not None:
            CONSUMER_LAG.labels(topic, str(partition)).set(max(highwater - offset - 1, 0))


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class HttpMetrics:
    """Counts every answer by the route's template (`/applications/{application_id}`, never the
    path itself) and status; a path no route matched is `unmatched`."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # what the client gets when the application raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = (route, str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_DURATION.labels(*labels).observe(time.perf_counter() - start)

"""OpenTelemetry traces, on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or its `_TRACES_` form) is set:
then spans go over OTLP/HTTP, and the FastAPI, aiokafka and PyMongo instrumentations and
FastStream's telemetry middleware make theirs.

One exchange is one trace across the services: an event carries the W3C trace context of the
span that stored it (the HTTP request's, or the consumer span of the event that caused it) as the
CloudEvents distributed-tracing extension (`traceparent`, `tracestate`; in Kafka binary mode the
`ce_traceparent`, `ce_tracestate` headers). It is taken when the event is wrapped, so it survives
the outbox and a relay in another process; the consumer continues it. A later HTTP request about
the same exchange (the host's answer) is a trace of its own, linked to the exchange's (`linked`).
With tracing off, each step below costs one test of ENABLED and nothing is added to events.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENABLED = False
_W3C = TraceContextTextMapPropagator()
_OFF = nullcontext()
_provider: Any = None


def wanted() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service_name: str):
    """The tracer provider exporting this process's spans, or None when tracing is off. Once per
    process: the instrumentations patch libraries globally."""
    global ENABLED, _provider
    if _provider is not None or not wanted():
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_RESOURCE_ATTRIBUTES adds to it; OTEL_SERVICE_NAME, when set, names the service instead.
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint, headers: OTEL_* variables
    trace.set_tracer_provider(_provider)
    AIOKafkaInstrumentor().instrument(tracer_provider=_provider)
    PymongoInstrumentor().instrument(tracer_provider=_provider)
    ENABLED = True
    return _provider


def instrument_app(app) -> None:
    if ENABLED:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="health/,metrics",
                                           server_request_hook=without_secrets)


URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "url.query")


def without_secrets(span, scope) -> None:
    """A request span keeps no query string nor credential segment (cx_shared.logging.redacted)."""
    from cx_shared.logging import redacted
    if span is None or not span.is_recording():
        return
    for key in URL_ATTRIBUTES:
        value = (span.attributes or {}).get(key)
        if isinstance(value, str):
            span.set_attribute(key, "" if key == "url.query" else redacted(value))


def shutdown() -> None:
    """Export what is still buffered (a SIGTERM must not lose the last spans)."""
    if _provider is not None:
        _provider.force_flush()


def current() -> dict[str, str]:
    """The current span's context as CloudEvents attributes ({} with tracing off or no span)."""
    if not ENABLED:
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def _context(traceparent: str | None, tracestate: str | None):
    carrier = {"traceparent": traceparent} | ({"tracestate": tracestate} if tracestate else {})
    return _W3C.extract(carrier)


def within(traceparent: str | None, tracestate: str | None = None):
    """Run in the trace an event carries (the relay's publish of it, say)."""
    if not ENABLED or not traceparent:
        return _OFF
    return _attached(_context(traceparent, tracestate))


@contextmanager
def _attached(ctx):
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def linked(name: str, traceparent: str | None, tracestate: str | None = None, **attributes: str):
    """A span of the current trace linked to another one: a request that acts on what an earlier
    trace made (a host answering an application submitted days before) stays its own trace, as
    a new request is, and points to that one (OpenTelemetry's span links) rather than joining it."""
    if not ENABLED:
        return _OFF
    target = trace.get_current_span(_context(traceparent, tracestate)).get_span_context() if traceparent else None
    links = [trace.Link(target)] if target is not None and target.is_valid else []
    return trace.get_tracer("cx_shared.tracing").start_as_current_span(name, links=links, attributes=attributes)


def consuming(event_type: str, traceparent: str | None, tracestate: str | None = None):
    """The consumer's span for one event, a child of the span that stored it."""
    if not ENABLED:
        return _OFF
    return trace.get_tracer("cx_shared.consumer").start_as_current_span(
        f"handle {event_type}", context=_context(traceparent, tracestate) if traceparent else None,
        kind=trace.SpanKind.CONSUMER, attributes={"cloudevents.event_type": event_type,
                                                  "messaging.system": "kafka"})

"""Link tokens (unsubscribe, confirmation) never reach an access log line nor a request span."""

import logging

from opentelemetry.sdk.trace import TracerProvider

from cx_shared.logging import WITHOUT_QUERY, redacted
from cx_shared.tracing import without_secrets

TOKEN = "s3cr3t-T0ken_abcdefghij"


def test_paths_and_urls_lose_their_link_tokens_and_query_strings():
    assert redacted(f"/unsubscribe/{TOKEN}") == "/unsubscribe/{token}"
    assert redacted(f"/notifications/confirmations/{TOKEN}?x=1") == "/notifications/confirmations/{token}"
    assert redacted(f"https://cx.example.eu/unsubscribe/{TOKEN}") == "https://cx.example.eu/unsubscribe/{token}"
    assert redacted("/webhooks/subscriptions/abc") == "/webhooks/subscriptions/abc"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", f"/unsubscribe/{TOKEN}", "1.1", 200), None)
    WITHOUT_QUERY.filter(record)
    assert TOKEN not in record.getMessage() and "/unsubscribe/{token}" in record.getMessage()


def test_a_request_span_keeps_no_token():
    span = TracerProvider().get_tracer("t").start_span("GET /unsubscribe/{token}", attributes={
        "http.target": f"/unsubscribe/{TOKEN}", "url.path": f"/confirmations/{TOKEN}",
        "http.url": f"http://127.0.0.1:8004/unsubscribe/{TOKEN}?a=b", "url.query": "a=b"})
    without_secrets(span, {})
    assert TOKEN not in str(dict(span.attributes))
    assert span.attributes["http.target"] == "/unsubscribe/{token}" and span.attributes["url.query"] == ""
    span.end()

"""The CloudEvents envelope: binary-mode round trip and precise errors for bad messages."""

from datetime import UTC, datetime

import pytest

from cx_shared.envelope import Envelope, MalformedMessage, as_request
from cx_shared.events.applications import ApplicationWithdrawn
from cx_shared.events.assessment import ApplicationRejected


def withdrawn() -> Envelope:
    return Envelope.wrap(ApplicationWithdrawn(application_id="app-1", call_id="call-1", reason="ill"),
                         source="/clusterxchange/applications", subject="app-1")


def test_binary_mode_round_trip_keeps_attributes_and_data():
    env = withdrawn()
    headers = dict(env.kafka_headers())
    assert headers["ce_type"] == b"eu.clusterxchange.application.withdrawn.v1"
    assert headers["ce_subject"] == b"app-1" and headers["ce_specversion"] == b"1.0"
    back = Envelope.from_kafka("cx.applications.v1", env.kafka_headers(), env.kafka_value())
    assert back.id == env.id and back.correlationid == env.id
    assert back.event() == ApplicationWithdrawn(application_id="app-1", call_id="call-1", reason="ill")


def test_caused_events_keep_the_correlation():
    first = withdrawn()
    caused = Envelope.wrap(ApplicationRejected(application_id="app-1", call_id="c", reasons=["x"]),
                           source="/clusterxchange/assessment", subject="app-1",
                           correlation_id=first.correlationid, causation_id=first.id)
    back = Envelope.from_kafka("t", caused.kafka_headers(), caused.kafka_value())
    assert back.correlationid == first.id and back.causationid == first.id


def test_trace_context_rides_as_the_cloudevents_tracing_extension(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from cx_shared import tracing
    assert "traceparent" not in withdrawn().to_outbox()  # tracing off: nothing is added to events
    assert not [k for k, _ in withdrawn().kafka_headers() if "trace" in k]
    monkeypatch.setattr(tracing, "ENABLED", True)
    with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
        env = withdrawn()
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert env.traceparent.split("-")[1] == trace_id
    stored = Envelope.from_outbox(env.to_outbox())
    back = Envelope.from_kafka("t", stored.kafka_headers(), stored.kafka_value())
    assert back.traceparent == env.traceparent  # through the outbox and the ce_traceparent header


@pytest.mark.parametrize("value, message", [
    (b"not json", "value is not JSON"),
    (b"[1, 2]", "value must be a JSON object"),
])
def test_unparseable_values_are_malformed(value, message):
    with pytest.raises(MalformedMessage, match=message):
        Envelope.from_kafka("t", withdrawn().kafka_headers(), value)


def test_missing_headers_are_named():
    with pytest.raises(MalformedMessage, match="ce_id, ce_source, ce_type"):
        Envelope.from_kafka("t", [("ce_specversion", b"1.0")], b"{}")


def test_data_breaking_the_contract_names_the_field():
    env = withdrawn()
    bad = Envelope.from_kafka("t", env.kafka_headers(), b'{"application_id": "a"}')
    with pytest.raises(MalformedMessage, match="call_id: Field required"):
        bad.event()


def test_unknown_types_are_not_errors():
    env = Envelope(source="/x", type="eu.clusterxchange.something.new.v9", subject="s", correlationid="c",
                   topic="t", data={}, time=datetime(2026, 1, 1, tzinfo=UTC))
    assert env.event() is None


def test_a_requests_first_event_records_it_and_the_others_name_it_as_their_cause():
    """as_request: the first carries the request's id (the cause a rebuild makes it again under)
    and no causation, at the change's time; the rest are caused by it and keep their own, later time."""
    at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    first, second = withdrawn(), withdrawn()
    recorded, following = as_request([first, second], "request-1", at)
    assert (recorded.id, recorded.causationid, recorded.time) == ("request-1", None, at)
    assert (following.id, following.causationid, following.time) == (second.id, "request-1", second.time)
    back = Envelope.from_kafka("cx.applications.v1", recorded.kafka_headers(), recorded.kafka_value())
    assert (back.id, back.causationid, back.time) == ("request-1", None, at)
    assert as_request([], "request-2") == []

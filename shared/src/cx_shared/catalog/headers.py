"""The Kafka headers of the catalog's messages: the CloudEvents attributes the envelope sends
(envelope.py, `kafka_headers`) and what the consumer adds to a dead letter (consumer.py)."""

from __future__ import annotations

from typing import Any

from cx_shared.envelope import CONTENT_TYPE, SPEC_VERSION
from cx_shared.events import Event

CLOUDEVENTS = "CloudEventsHeaders"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"
DEAD_LETTER = "dead-letter"
REF = "#/components/schemas/"

_TEXT = {"type": "string", "minLength": 1}
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "ce_id": {**_TEXT, "description": "the event's unique id: drop a redelivery by it"},
    "ce_source": {**_TEXT, "description": "who produced it: `/clusterxchange/<service>` or `/partnership/finance`"},
    "ce_type": {**_TEXT, "description": "`eu.clusterxchange.<name>.v<version>`: the contract"},
    "ce_time": {"type": "string", "format": "date-time", "description": "when it happened (ISO 8601)"},
    "ce_subject": {"type": "string", "description": "what it is about; also the record's key"},
    "ce_specversion": {"type": "string", "const": SPEC_VERSION},
    "ce_correlationid": {**_TEXT, "description": "shared by every consequence of one request"},
    "ce_causationid": {**_TEXT, "description": "the ce_id of the event that caused it; absent on the "
                       "first event of an HTTP request, which its request's other events name"},
    "ce_traceparent": {"type": "string", "description": "W3C Trace Context of the span that made the event (the "
                       "CloudEvents distributed-tracing extension); only while the producer exports traces"},
    "ce_tracestate": {"type": "string", "description": "W3C tracestate going with ce_traceparent, when there is one"},
    "traceparent": {"type": "string", "description": "W3C Trace Context of the producer's publish span (the "
                    "OpenTelemetry aiokafka instrumentation); only while the producer exports traces"},
    "tracestate": {"type": "string", "description": "W3C tracestate going with traceparent, when there is one"},
    "content-type": {"type": "string", "const": CONTENT_TYPE},
}
OPTIONAL = {"ce_causationid", "ce_traceparent", "ce_tracestate", "traceparent", "tracestate"}
ALWAYS_SENT = [name for name in ATTRIBUTES if name not in OPTIONAL]

DEAD_LETTER_REASONS = {
    "malformed": "not JSON, missing CloudEvents headers, or data breaking its contract",
    "forged": "an event on a topic other than its contract's, or from a source its topic does not allow",
    "poison": "its handler kept failing (CONSUMER_MAX_ATTEMPTS)",
}
DLQ: dict[str, dict[str, Any]] = {
    "dlq_reason": {"type": "string", "enum": list(DEAD_LETTER_REASONS),
                   "description": "; ".join(f"`{k}`: {v}" for k, v in DEAD_LETTER_REASONS.items())},
    "dlq_error": {"type": "string", "maxLength": 4000, "description": "what was wrong, naming field and rule"},
    "dlq_original_topic": {"type": "string"},
    "dlq_original_partition": {"type": "string", "pattern": "^[0-9]+$"},
    "dlq_original_offset": {"type": "string", "pattern": "^[0-9]+$"},
    "dlq_consumer_group": {"type": "string", "description": "the consumer group that gave up on it"},
}


def schemas() -> dict[str, Any]:
    return {
        CLOUDEVENTS: {"type": "object", "title": "CloudEvents 1.0 binary mode headers (UTF-8 values)",
                      "properties": ATTRIBUTES, "required": ALWAYS_SENT},
        DEAD_LETTER_HEADERS: {"type": "object", "title": "A dead letter's headers: the original ones, plus why",
                              "properties": {**ATTRIBUTES, **DLQ}, "required": list(DLQ)},
    }


def for_contract(cls: type[Event], key: str) -> dict[str, Any]:
    """The common headers, with the values this contract fixes."""
    sources = list(cls.topic.sources)
    return {"type": "object", "allOf": [{"$ref": REF + CLOUDEVENTS}, {"type": "object", "properties": {
        "ce_type": {"type": "string", "const": cls.ce_type()},
        "ce_source": {"type": "string", "const": sources[0]} if len(sources) == 1 else {"enum": sources},
        "ce_subject": {"type": "string", "description": f"the key: {key}"}}}]}


def dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter", "title": "Dead letter",
        "summary": "A message a consumer could not handle, byte for byte, with why in its headers",
        "description": "The offset of the original is committed only after its dead letter is written. Only the "
                       "admin reads this topic.",
        "headers": {"$ref": REF + DEAD_LETTER_HEADERS},
        "payload": {"description": "the original record's value, unchanged (the contract's JSON, or anything "
                                   "for a malformed message)"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the original record's key"},
                               "bindingVersion": "0.5.0"}},
    }

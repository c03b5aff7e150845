"""The event catalog: one AsyncAPI 3.0 document of the whole system, generated from code.

Channels are the topics (topics.py); messages are the event contracts (events/) with their
JSON Schema, the CloudEvents headers the envelope sends and the key; operations say who
sends on each topic and which events each consumer receives (its handler table).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic.json_schema import models_json_schema

from cx_shared.catalog import headers
from cx_shared.catalog.examples import example
from cx_shared.envelope import CONTENT_TYPE
from cx_shared.events import Event, all_event_classes
from cx_shared.topics import DEAD_LETTERS, EVENT_TOPICS, SERVICES, Topic, consumer_group

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
SCHEMAS = "#/components/schemas/"
# The field whose value is an event's key (and ce_subject): the first of these it has.
KEY_FIELDS = ("application_id", "organisation_id", "offer_id", "call_id", "partnership_id", "subject_id")

INFO = """Every event of ClusterXchange on Apache Kafka, generated from the code (`make catalog`).

**CloudEvents 1.0, binary mode.** The attributes travel as `ce_*` headers (`ce_id`, `ce_source`,
`ce_type`, `ce_time`, `ce_subject`, `ce_specversion`, `ce_correlationid`, `ce_causationid` when the
event was caused by another), `content-type: application/json`; the value is the event's JSON.
`ce_type` is `eu.clusterxchange.<name>.v<version>`; `ce_correlationid` is shared by every event of
one request's consequences, `ce_causationid` is the `ce_id` of the event that caused this one. Of
the events one HTTP request makes, the first has no `ce_causationid` (it records the request) and the
others name it.

**Key and order.** The key is the event's subject (`ce_subject`): the application (exchange) id for
everything about an exchange, so one exchange's events stay in order on one partition; otherwise
the id of what the event is about (organisation, partnership, offer, call). There is no order
across keys.

**Delivery.** At least once: drop a redelivered event by its `ce_id`. An event is believed only on
its contract's topic and from a `ce_source` its topic allows (else it is dead-lettered as forged).

**Versions.** Consumers ignore unknown fields and unknown types, so a producer may add optional
fields to a version; anything else is a new version (`.v2`) published beside the old one, whose
committed schema never changes (`docs/schemas/`).

**Access.** SASL/SCRAM-SHA-512 and ACLs: each service writes only its own topic and reads what
its handlers consume; outside systems read with the `subscriber` principal (README, Security).
With `TOPIC_NAMESPACE` set, every topic and group name carries it as a suffix."""


def build(consumers: Mapping[str, Iterable[type[Event]]], contracts: Sequence[type[Event]] | None = None,
          version: str = "1.0.0") -> dict[str, Any]:
    """The whole catalog. ``consumers``: each consuming party and the contracts it handles."""
    contracts = sorted(contracts or all_event_classes(), key=lambda c: (c.topic.name, c.name, c.version))
    readers = {party: set(handled) for party, handled in consumers.items()}
    refs, schemas = _payload_schemas(contracts)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "ClusterXchange events", "version": version, "description": INFO},
        "defaultContentType": CONTENT_TYPE,
        "servers": {"kafka": _server()},
        "channels": {t.name: _channel(t, [c for c in contracts if c.topic is t]) for t in EVENT_TOPICS},
        "operations": _operations(contracts, readers),
        "components": {
            "schemas": {**schemas, **headers.schemas()},
            "messages": {message_id(c): _message(c, refs[c], readers) for c in contracts} | {
                headers.DEAD_LETTER: headers.dead_letter_message()},
            "securitySchemes": {"scram": {"type": "scramSha512", "description": (
                "One principal per service, `finance` for the partnership's finance system, `subscriber` for "
                "outside readers; TLS (SASL_SSL) across hosts.")}},
        },
    }


def message_id(cls: type[Event]) -> str:
    return f"{cls.name}.v{cls.version}"


def key_field(cls: type[Event]) -> str:
    return next(f for f in KEY_FIELDS if f in cls.model_fields)


def _server() -> dict[str, Any]:
    return {"host": "{bootstrap}", "protocol": "kafka-secure",
            "description": "The deployment's brokers (`KAFKA_BOOTSTRAP_SERVERS`).",
            "variables": {"bootstrap": {"default": "127.0.0.1:9092", "description": "host:port of a broker"}},
            "security": [{"$ref": "#/components/securitySchemes/scram"}]}


def _payload_schemas(contracts: Sequence[type[Event]]) -> tuple[dict[type[Event], dict], dict[str, Any]]:
    """Every contract's JSON Schema, the models they share defined once under components/schemas."""
    keys, top = models_json_schema([(c, "validation") for c in contracts], ref_template=SCHEMAS + "{model}")
    return {c: keys[(c, "validation")] for c in contracts}, top.get("$defs", {})


def _channel(topic: Topic, contracts: list[type[Event]]) -> dict[str, Any]:
    messages = {message_id(c): {"$ref": f"#/components/messages/{message_id(c)}"} for c in contracts}
    if topic is DEAD_LETTERS:
        messages = {headers.DEAD_LETTER: {"$ref": f"#/components/messages/{headers.DEAD_LETTER}"}}
    sources = ", ".join(f"`{s}`" for s in topic.sources) or "the consumer that gave up (original headers kept)"
    readers = ", ".join(topic.readers) or "the admin only"
    description = (f"{topic.purpose[0].upper()}{topic.purpose[1:]}. Written only by `{topic.producer}`; "
                   f"`ce_source`: {sources}. Read by: {readers}"
                   + ("; outside systems with the `subscriber` principal." if topic is not DEAD_LETTERS else "."))
    return {"address": topic.name, "title": topic.name, "description": description, "messages": messages,
            "bindings": {"kafka": {"topic": topic.name, "bindingVersion": KAFKA_BINDING}}}


def _message(cls: type[Event], payload: dict, readers: Mapping[str, set[type[Event]]]) -> dict[str, Any]:
    consumers = sorted(party for party, handled in readers.items() if cls in handled)
    key = key_field(cls)
    key_text = (f"`{key}`" if key in _required(cls) else
                f"`{key}` when the event has one, else the key of the event that caused it")
    doc = inspect.cleandoc(cls.__doc__ or "")
    summary = doc.split("\n\n")[0].replace("\n", " ") if doc else f"{cls.name}, version {cls.version}"
    return {
        "name": cls.__name__, "title": f"{cls.__name__} v{cls.version}", "summary": summary,
        "description": (f"CloudEvents type `{cls.ce_type()}`. Produced by {cls.topic.producer} on "
                        f"`{cls.topic.name}`; consumed by {', '.join(consumers) or 'no service (for subscribers)'}. "
                        f"Key: {key_text}."),
        "contentType": CONTENT_TYPE,
        "headers": headers.for_contract(cls, key_text),
        "payload": payload,
        "correlationId": {"location": "$message.header#/ce_correlationid",
                          "description": "shared by every event caused, directly or not, by one request"},
        "bindings": {"kafka": {"key": {"type": "string", "description": f"the event's subject: {key_text}"},
                               "bindingVersion": KAFKA_BINDING}},
        "examples": [example(cls, key)],
        "x-ce-type": cls.ce_type(), "x-producer": cls.topic.producer, "x-consumers": consumers,
    }


def _required(cls: type[Event]) -> set[str]:
    return {name for name, f in cls.model_fields.items() if f.is_required()}


def _operations(contracts: Sequence[type[Event]], readers: Mapping[str, set[type[Event]]]) -> dict[str, Any]:
    operations = {}
    for topic in EVENT_TOPICS:
        mine = [c for c in contracts if c.topic is topic]
        if mine:
            operations[f"{topic.producer}.sends.{topic.name}"] = _operation("send", topic, mine, topic.producer)
        for party in sorted(readers):
            handled = [c for c in mine if c in readers[party]]
            if handled:
                operations[f"{party}.receives.{topic.name}"] = _operation("receive", topic, handled, party)
    for service in SERVICES:  # whatever a consumer cannot handle goes to the dead letters
        operations[f"{service}.sends.{DEAD_LETTERS.name}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{DEAD_LETTERS.name}"},
            "summary": f"{service} parks a malformed, forged or poison message",
            "messages": [{"$ref": f"#/channels/{DEAD_LETTERS.name}/messages/{headers.DEAD_LETTER}"}]}
    return operations


def _operation(action: str, topic: Topic, contracts: list[type[Event]], party: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action, "channel": {"$ref": f"#/channels/{topic.name}"},
        "summary": f"{party} {action}s {', '.join(c.__name__ for c in contracts)}",
        "messages": [{"$ref": f"#/channels/{topic.name}/messages/{message_id(c)}"} for c in contracts]}
    if action == "receive":
        operation["bindings"] = {"kafka": {"groupId": {"type": "string", "const": consumer_group(party)},
                                           "bindingVersion": KAFKA_BINDING}}
    return operation

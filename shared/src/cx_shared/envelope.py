"""CloudEvents 1.0 over Kafka in binary content mode.

Attributes travel as ``ce_*`` headers, the event's JSON data is the message value and
the key is the subject (the exchange/application id), so one exchange stays ordered.
Correlation and causation ids ride along as extension attributes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cx_shared import tracing
from cx_shared.events import Event, event_class

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class MalformedMessage(ValueError):
    """A message that can never be processed: it goes to the dead-letter topic."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    subject: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    specversion: str = SPEC_VERSION
    datacontenttype: str = CONTENT_TYPE
    correlationid: str
    causationid: str | None = None
    topic: str
    data: dict[str, Any]
    # The CloudEvents distributed-tracing extension: the W3C context of the span that made the event.
    traceparent: str | None = None
    tracestate: str | None = None

    @classmethod
    def wrap(cls, event: Event, *, source: str, subject: str, correlation_id: str | None = None,
             causation_id: str | None = None) -> Envelope:
        envelope_id = str(uuid.uuid4())
        return cls(id=envelope_id, source=source, type=event.ce_type(), subject=subject,
                   correlationid=correlation_id or envelope_id, causationid=causation_id,
                   topic=event.topic.name, data=event.model_dump(mode="json"), **tracing.current())

    def event(self) -> Event | None:
        """The typed contract, or None for a type this build does not know (forward compatible).

        Raises MalformedMessage naming the field and rule when the data breaks the contract."""
        cls = event_class(self.type)
        if cls is None:
            return None
        try:
            return cls.model_validate(self.data)
        except ValidationError as exc:
            raise MalformedMessage(f"{self.type}: {describe_validation_error(exc)}") from exc

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        attrs = {"id": self.id, "source": self.source, "type": self.type, "subject": self.subject,
                 "time": self.time.isoformat(), "specversion": self.specversion,
                 "correlationid": self.correlationid, "causationid": self.causationid,
                 "traceparent": self.traceparent, "tracestate": self.tracestate}
        headers = [(f"ce_{k}", v.encode()) for k, v in attrs.items() if v is not None]
        return headers + [("content-type", self.datacontenttype.encode())]

    def kafka_value(self) -> bytes:
        return json.dumps(self.data, separators=(",", ":")).encode()

    def to_outbox(self) -> dict[str, Any]:
        """The form stored in a document's outbox (plain BSON types only); an event too large
        for the broker is refused here, before any outbox holds it."""
        from cx_shared.outbox import refuse_oversized  # here: the outbox module imports this one
        untraced = {"traceparent", "tracestate"} if self.traceparent is None else None
        return refuse_oversized(self.model_dump(mode="json", exclude=untraced))

    @classmethod
    def from_outbox(cls, entry: dict[str, Any]) -> Envelope:
        return cls.model_validate(entry)

    @classmethod
    def from_kafka(cls, topic: str, headers: Iterable[tuple[str, bytes]], value: bytes | None) -> Envelope:
        """Parse a binary-mode CloudEvent, raising MalformedMessage with what is wrong."""
        attrs = {k[3:]: v.decode("utf-8", "replace") for k, v in headers if k.startswith("ce_") and v is not None}
        missing = [a for a in ("id", "source", "type", "specversion") if not attrs.get(a)]
        if missing:
            raise MalformedMessage(f"missing CloudEvents header(s): {', '.join('ce_' + m for m in missing)}")
        try:
            data = json.loads(value or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedMessage(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedMessage("value must be a JSON object")
        attrs.setdefault("correlationid", attrs["id"])
        attrs.setdefault("subject", "")
        try:
            return cls(topic=topic, data=data, **attrs)
        except ValidationError as exc:
            raise MalformedMessage(f"CloudEvents attributes: {describe_validation_error(exc)}") from exc


def as_request(envelopes: list[Envelope], request_id: str, at: datetime | None = None) -> list[Envelope]:
    """The events of one HTTP request: the first records the request (its id is `request_id`, the
    cause the service remembers the change by; no causation), the others follow from it and name
    it as their cause; `at`, when given, is the time the change was stamped with, which the first
    carries (the others keep their own, later: a replay in time order meets the first first). A
    rebuild makes the request again from its first event, under the same cause, and skips the others."""
    if not envelopes:
        return envelopes
    stamp = {"time": at} if at is not None else {}
    first, *rest = envelopes
    return [first.model_copy(update={"id": request_id, "causationid": None, **stamp}),
            *(e.model_copy(update={"causationid": request_id}) for e in rest)]


def describe_validation_error(exc: ValidationError) -> str:
    """'field.path: rule' for every failure, the form used in problem details and dead letters."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)

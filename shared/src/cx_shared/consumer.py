"""Idempotent, poison-proof consumption: one table maps each event type to its handler.

Every message is either handled, skipped (an event type this service does not handle)
or sent to the dead-letter topic with the error in its headers; the offset is
committed only after that, so nothing is lost, and no message can stall a partition.

Records come in batches: those of one key (one exchange, one call...), from whichever topic,
are handled one after the other in their order, different keys at the same time, and the batch's offsets are
committed once all of it is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError

from cx_shared import metrics, tracing
from cx_shared.envelope import Envelope, MalformedMessage
from cx_shared.events import Event
from cx_shared.kafka import Publisher
from cx_shared.logging import bind_contextvars, get_logger
from cx_shared.topics import DEAD_LETTERS, qualified

log = get_logger(__name__)

TRANSIENT = (AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError, ConnectionError,
             asyncio.TimeoutError)


class Record(Protocol):
    """What we need of a Kafka record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass(frozen=True)
class Delivery:
    """The event being handled and the means to emit events caused by it."""

    envelope: Envelope
    source: str

    @property
    def event_id(self) -> str:
        return self.envelope.id

    def emit(self, event: Event, subject: str | None = None) -> Envelope:
        """An envelope for an event this delivery causes: same correlation, caused by it."""
        return Envelope.wrap(event, source=self.source, subject=subject or self.envelope.subject,
                             correlation_id=self.envelope.correlationid, causation_id=self.envelope.id)


Handler = Callable[[Any, Delivery, Any], Awaitable[None]]


def forgery(envelope: Envelope, event: Event, topic: str, namespace: str = "") -> str | None:
    """Why an event must not be believed, or None: it is believed only on its contract's topic
    (which the broker lets only its producer write) and from a source its topic allows (so
    the admin, or a broker without ACLs, cannot pass one producer's facts off as another's)."""
    contract = type(event).topic
    if topic != qualified(contract, namespace):
        return f"{envelope.type} is published on {qualified(contract, namespace)}, not {topic}"
    if envelope.source not in contract.sources:
        return f"{envelope.type} comes from {', '.join(contract.sources)}, not {envelope.source}"
    return None


class Consumer:
    def __init__(self, handlers: Mapping[type[Event], Handler], deps: Any, publisher: Publisher, *,
                 source: str, group: str, namespace: str = "", max_attempts: int = 5,
                 backoff_seconds: float = 0.2, backoff_max_seconds: float = 30.0):
        self.handlers, self.deps, self.publisher = dict(handlers), deps, publisher
        self.source, self.group, self.namespace = source, group, namespace
        self.max_attempts, self.backoff, self.backoff_max = max_attempts, backoff_seconds, backoff_max_seconds

    async def consume_batch(self, records: Sequence[Record], concurrency: int = 32) -> None:
        """Each key's records in order; keys concurrently, at most ``concurrency`` at a time."""
        # By key alone, across topics: one exchange's facts from different producers are handled
        # one after the other too (a handler may wait for, or park behind, an earlier one).
        by_key: dict[bytes | None, list[Record]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(record)
        gate = asyncio.Semaphore(concurrency)

        async def in_order(same_key: list[Record]) -> None:
            async with gate:
                for record in same_key:
                    await self.consume(record)

        await asyncio.gather(*(in_order(group) for group in by_key.values()))

    def topics(self) -> list[str]:
        return sorted({qualified(cls.topic, self.namespace) for cls in self.handlers})

    async def consume(self, record: Record) -> None:
        headers = list(record.headers or [])
        try:
            envelope = Envelope.from_kafka(record.topic, headers, record.value)
            event = envelope.event()
        except MalformedMessage as exc:
            await self.dead_letter(record, "malformed", str(exc))
            return
        handler = self.handlers.get(type(event)) if event is not None else None
        if handler is None:
            return  # not ours, or a newer type this build does not know
        if why := forgery(envelope, event, record.topic, self.namespace):
            await self.dead_letter(record, "forged", why)
            return
        bind_contextvars(correlation_id=envelope.correlationid, event_id=envelope.id, event_type=envelope.type)
        start = time.perf_counter()
        with tracing.consuming(envelope.type, envelope.traceparent, envelope.tracestate):
            outcome = await self._handle(record, handler, event, Delivery(envelope, self.source))
        metrics.HANDLER_DURATION.labels(envelope.type).observe(time.perf_counter() - start)
        metrics.CONSUMED.labels(envelope.type, outcome).inc()

    async def _handle(self, record: Record, handler: Handler, event: Event, delivery: Delivery) -> str:
        """`handled`, or `dead_lettered` after CONSUMER_MAX_ATTEMPTS failures."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(event, delivery, self.deps)
                return "handled"
            except TRANSIENT as exc:  # the database or broker is away: wait, never dead-letter
                log.warning("transient failure, retrying", attempt=attempt, error=repr(exc))
            except Exception as exc:
                if attempt >= self.max_attempts:
                    log.exception("handler keeps failing, dead-lettering", attempts=attempt)
                    await self.dead_letter(record, "poison", f"{type(exc).__name__}: {exc}")
                    return "dead_lettered"
                log.warning("handler failed, retrying", attempt=attempt, error=repr(exc))
            await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))

    async def dead_letter(self, record: Record, reason: str, error: str) -> None:
        log.error("dead letter", reason=reason, error=error, topic=record.topic, offset=record.offset)
        headers = list(record.headers or []) + [
            ("dlq_reason", reason.encode()),
            ("dlq_error", error[:4000].encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer_group", self.group.encode()),
        ]
        await self.publisher.send_raw(qualified(DEAD_LETTERS, self.namespace), record.value, record.key, headers)
        ce_type = next((v for k, v in headers if k == "ce_type" and isinstance(v, bytes)), b"")
        metrics.DEAD_LETTERS.labels(reason, metrics.known_type(ce_type.decode("utf-8", "replace"))).inc()

"""Reading and writing topics directly, as a subscribing system would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cx_shared.envelope import Envelope, MalformedMessage
from cx_shared.topics import Topic, qualified


class TopicWatcher:
    """Collects every record of some topics from the beginning."""

    def __init__(self, bootstrap: str, topics: list[str]):
        self.records: list = []
        self._consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"watch-{uuid.uuid4().hex}",
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          metadata_max_age_ms=1000)
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> TopicWatcher:
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _collect(self) -> None:
        seen: set[tuple[str, int, int]] = set()
        async for record in self._consumer:
            # A rebalance of the watcher's own group can deliver a record again: keep each once.
            position = (record.topic, record.partition, record.offset)
            if position not in seen:
                seen.add(position)
                self.records.append(record)

    def envelopes(self) -> list[Envelope]:
        result = []
        for r in self.records:
            try:
                result.append(Envelope.from_kafka(r.topic, r.headers, r.value))
            except MalformedMessage:
                pass
        return result

    def of_type(self, event_cls, subject: str | None = None) -> list[Envelope]:
        return [e for e in self.envelopes()
                if e.type == event_cls.ce_type() and (subject is None or e.subject == subject)]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 60.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def publish_raw(bootstrap: str, topic: str, value: bytes | None, *, key: bytes | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def publish_envelope(bootstrap: str, envelope: Envelope, namespace: str = "") -> None:
    await publish_raw(bootstrap, qualified(envelope.topic, namespace), envelope.kafka_value(),
                      key=envelope.subject.encode(), headers=envelope.kafka_headers())


def topic_names(namespace: str, *topics: Topic) -> list[str]:
    return [qualified(t, namespace) for t in topics]


async def wait_consumed(bootstrap: str, groups: list[str], topics: list[str], timeout: float = 60) -> None:
    """Wait until every group has committed, on every partition it consumes (has committed before),
    up to the partition's end: every delivered message has been handled."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or
                                                                      await _partitions(consumer, t))]
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lagging = []
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                lagging += [(group, tp) for tp in partitions
                            if tp in committed and 0 <= committed[tp].offset < ends[tp]]
            if not lagging:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"consumers still lagging: {lagging}")
    finally:
        await admin.close()
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()

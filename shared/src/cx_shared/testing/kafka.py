"""Reading and writing topics directly, as a subscribing system would (with the broker
settings given: the tests' admin, or a principal whose rights a test checks)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from cx_shared.envelope import Envelope, MalformedMessage
from cx_shared.kafka import admin_client, client_options, stop_reading
from cx_shared.settings import KafkaSettings
from cx_shared.topics import Topic, qualified


STILL_GROUP_STATES = {"Stable", "Empty", "Dead"}  # not PreparingRebalance, CompletingRebalance


class TopicWatcher:
    """Collects every record of some topics from the beginning."""

    def __init__(self, kafka: KafkaSettings, topics: list[str]):
        self.records: list = []
        self.topics = set(topics)
        self._consumer = AIOKafkaConsumer(*topics, **client_options(kafka), group_id=f"watch-{uuid.uuid4().hex}",
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          metadata_max_age_ms=1000)
        self._task: asyncio.Task | None = None
        self._next: dict[TopicPartition, int] = {}  # per partition: the offset after the last collected

    async def __aenter__(self) -> TopicWatcher:
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc) -> None:
        await stop_reading(self._task, self._consumer)

    async def _collect(self) -> None:
        seen: set[tuple[str, int, int]] = set()
        async for record in self._consumer:
            # A rebalance of the watcher's own group can deliver a record again: keep each once.
            position = (record.topic, record.partition, record.offset)
            if position not in seen:
                seen.add(position)
                self.records.append(record)
                partition = TopicPartition(record.topic, record.partition)
                self._next[partition] = max(self._next.get(partition, 0), record.offset + 1)

    def lagging(self, ends: dict[TopicPartition, int]) -> list[tuple[str, TopicPartition]]:
        """The partitions whose records up to ``ends`` the watcher has not all collected yet
        (records from different partitions arrive in no particular order)."""
        return [("watcher", tp) for tp, end in ends.items() if tp.topic in self.topics and self._next.get(tp, 0) < end]

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


async def publish_raw(kafka: KafkaSettings, topic: str, value: bytes | None, *, key: bytes | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def publish_envelope(kafka: KafkaSettings, envelope: Envelope, namespace: str = "") -> None:
    await publish_raw(kafka, qualified(envelope.topic, namespace), envelope.kafka_value(),
                      key=envelope.subject.encode(), headers=envelope.kafka_headers())


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[TopicPartition, int]:
    """Where each partition of the topic ends: how many records were ever written to it."""
    consumer = AIOKafkaConsumer(**client_options(kafka))
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in await _partitions(consumer, topic)])
    finally:
        await consumer.stop()


def topic_names(namespace: str, *topics: Topic) -> list[str]:
    return [qualified(t, namespace) for t in topics]


async def wait_consumed(kafka: KafkaSettings, groups: list[str], topics: list[str], *,
                        watcher: TopicWatcher | None = None, quiet: float = 1.0, timeout: float = 60) -> None:
    """Wait until the system is at rest on these topics: every group has committed every
    record of the topics it subscribes to, the watcher (if given) has collected them all, and
    no record was added for ``quiet`` seconds, longer than an outbox relay's poll, so events
    caused by the last records handled are waited for too."""
    consumer = AIOKafkaConsumer(**client_options(kafka))
    await consumer.start()
    try:
        async with admin_client(kafka) as admin:
            partitions = [TopicPartition(t, p) for t in topics
                          for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))]

            async def lagging() -> tuple[dict, list]:
                ends = await consumer.end_offsets(partitions)
                return ends, await _lagging(admin, groups, ends) + (watcher.lagging(ends) if watcher else [])

            deadline = time.monotonic() + timeout
            while True:
                ends, behind = await lagging()
                if not behind:
                    await asyncio.sleep(quiet)
                    if await lagging() == (ends, []):
                        return
                if time.monotonic() > deadline:  # lagging, or records that keep arriving
                    raise AssertionError(f"not at rest after {timeout}s: {behind or 'records kept arriving'}")
                if behind:
                    await asyncio.sleep(0.3)
    finally:
        await consumer.stop()


async def _lagging(admin: AIOKafkaAdminClient, groups: list[str], ends: dict) -> list:
    subscribed, rebalancing = await _subscriptions(admin, groups)
    lagging: list = [(group, "rebalancing") for group in rebalancing]
    for group in groups:
        committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
        # A group that has no member now (a stopped service) is judged on what it consumed before.
        topics = subscribed[group] | {tp.topic for tp, meta in committed.items() if meta.offset >= 0}
        lagging += [(group, tp) for tp, end in ends.items()
                    if tp.topic in topics and end > 0 and _offset(committed.get(tp)) < end]
    return lagging


def _offset(meta) -> int:
    return meta.offset if meta is not None else -1


async def _subscriptions(admin: AIOKafkaAdminClient, groups: list[str]) -> tuple[dict[str, set[str]], list[str]]:
    """The topics each group's members subscribe to, as they told the group coordinator (a
    partition a group has not committed on yet may still be its to consume), and the groups
    in the middle of a rebalance (the coordinator tells their subscriptions only once stable)."""
    subscribed: dict[str, set[str]] = {group: set() for group in groups}
    rebalancing = []
    for group_id in groups:  # one at a time: aiokafka 0.14 misreads the answer for several
        for response in await admin.describe_consumer_groups([group_id]):
            for group in response.groups:  # (error, group, state, protocol_type, protocol, members)
                if group[2] not in STILL_GROUP_STATES:
                    rebalancing.append(group_id)
                for member in group[5]:  # (member_id, client_id, client_host, metadata, assignment)
                    if member[3]:
                        subscribed[group_id].update(ConsumerProtocolMemberMetadata.decode(member[3]).subscription)
    return subscribed, rebalancing


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()

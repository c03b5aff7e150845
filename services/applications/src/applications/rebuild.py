"""`python -m applications.rebuild [--drop]`: replay the topics from the beginning into an
empty read model (the database of MONGODB_DATABASE) with the service's own handlers.

Events are applied in the order they happened (CloudEvents time, then id) across all the
topics, so an exchange's timeline and status come out as they were built live. Run it with
the service stopped (or into another database); when the service starts again its consumer
group goes on from its committed offsets and drops what the rebuild already applied.
Idempotency keys survive: an application submitted with a key has an id derived from it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from cx_shared.consumer import Delivery, forgery
from cx_shared.envelope import Envelope, MalformedMessage
from cx_shared.kafka import client_options
from cx_shared.logging import configure_logging, get_logger
from cx_shared.settings import KafkaSettings
from cx_shared.topics import qualified

from applications.handlers import CREATIONS, HANDLERS
from applications.settings import Settings
from applications.storage import OUTBOX_COLLECTIONS, Storage

log = get_logger(__name__)


async def read_topics(kafka: KafkaSettings, topics: list[str]) -> list[Envelope]:
    """Every well-formed CloudEvent on the topics, from the beginning up to their current end."""
    # Subscribed without a group, the consumer is given every partition of the topics.
    consumer = AIOKafkaConsumer(*topics, **client_options(kafka), enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await assigned(consumer, topics)
        if not partitions:
            return []
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        envelopes: list[Envelope] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        envelopes.append(parse(record))
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return [e for e in envelopes if e is not None]
    finally:
        # aiokafka's group-less consumer may raise the CancelledError of its own internal task on stop
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def assigned(consumer: AIOKafkaConsumer, topics: list[str], timeout: float = 10.0) -> list[TopicPartition]:
    """The partitions of every topic, once the broker's metadata names them all (a topic that
    does not exist is given up on after `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while ({tp.topic for tp in consumer.assignment()} < set(topics)
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.1)
    return sorted(consumer.assignment())


def parse(record) -> Envelope | None:
    try:
        return Envelope.from_kafka(record.topic, record.headers or [], record.value)
    except MalformedMessage:
        return None  # the live consumer dead-lettered it too


async def replay(storage: Storage, envelopes: list[Envelope], source: str, namespace: str | None = None) -> int:
    """Apply the events: first what creates documents (enrolments, calls, offers, submissions),
    then the lifecycle, each in time order. A lifecycle event never meets a missing application,
    even if the clock of the service that emitted it ran behind ours. Events read from the
    broker (namespace given) are checked as the live consumer checks them: a forged one, which
    it dead-lettered, is not applied either."""
    steps = []
    for envelope in envelopes:
        try:
            event = envelope.event()
        except MalformedMessage:
            continue
        handler = HANDLERS.get(type(event)) if event is not None else None
        if handler is not None and namespace is not None and forgery(envelope, event, envelope.topic, namespace):
            continue
        if handler is not None:
            steps.append((type(event) not in CREATIONS, envelope.time, envelope.id, event, envelope, handler))
    for *_, event, envelope, handler in sorted(steps, key=lambda step: step[:3]):
        await handler(event, Delivery(envelope, source), storage)
    return len(steps)


async def rebuild(settings: Settings, drop: bool = False) -> int:
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        db = client[settings.mongodb_database]
        if drop:
            await client.drop_database(settings.mongodb_database)
        elif any([await db[name].count_documents({}, limit=1) for name in OUTBOX_COLLECTIONS]):
            raise SystemExit(f"the read model {settings.mongodb_database} is not empty: pass --drop to replace it")
        storage = Storage(db)
        await storage.init()
        topics = sorted({qualified(cls.topic, settings.topic_namespace) for cls in HANDLERS})
        envelopes = await read_topics(settings, topics)
        applied = await replay(storage, envelopes, settings.source, settings.topic_namespace)
        log.info("read model rebuilt", database=settings.mongodb_database, events=len(envelopes), applied=applied)
        return applied
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m applications.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--drop", action="store_true", help="drop the read model's database first")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if refusals := settings.kafka_refusals():
        raise SystemExit("refusing to read the topics: " + "; ".join(refusals))
    applied = asyncio.run(rebuild(settings, drop=args.drop))
    print(f"rebuilt {settings.mongodb_database}: {applied} events applied", file=sys.stderr)


if __name__ == "__main__":
    main()

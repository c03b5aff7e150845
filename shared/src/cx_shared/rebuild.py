"""`python -m <service>.rebuild [--drop] [--configuration-from DATABASE]`: replay the topics a
service consumes, from the beginning, into an empty database (MONGODB_DATABASE), with the
service's own handlers: the one rebuild of the four services.

The topics are read without a consumer group (nothing committed, the live group untouched) up
to the end offsets seen at the start, and the events applied one at a time, those the service
names first (documents that others refer to), then the rest, each in the order they happened
(CloudEvents time, then id). The outbox relay does not run: the events the handlers emit again
are the ones already on the topics, so they are dropped, and each document is left as a live
one is at rest, its outbox published (empty, no pending mark). Nothing but the handlers runs:
no HTTP, no background loop (notifications' mailer, dispatcher and reminders).

A service whose documents are also made by HTTP requests gets them back from its own events on
its own topic (applications: `recording`). What is entered over HTTP and carried by no event
(notifications' subscriptions, staff, opt-outs) is configuration: copied from the live
database first (--configuration-from), since the handlers read it (who gets an email).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from cx_shared.consumer import Delivery, Handler, forgery
from cx_shared.envelope import Envelope, MalformedMessage
from cx_shared.events import Event
from cx_shared.kafka import client_options
from cx_shared.logging import configure_logging, get_logger
from cx_shared.personal_data.keys import KeyRing
from cx_shared.settings import KafkaSettings, ServiceSettings
from cx_shared.store import OUTBOX, PENDING, SINCE
from cx_shared.topics import qualified

log = get_logger(__name__)


@dataclass(frozen=True)
class Replay:
    """What a service tells the rebuild: its handlers (those of the live consumer, or a table of
    its own for the replay), its storage, the collections with outboxes, the event types that
    create documents (applied first) and its configuration collections (copied, never replayed)."""

    settings: Callable[[], ServiceSettings]
    handlers: Mapping[type[Event], Handler]
    storage: Callable[[Any], Any]
    outbox_collections: Iterable[str]
    first: frozenset[type[Event]] = frozenset()
    configuration: tuple[str, ...] = ()
    key_ring: bool = False  # it opens personal data with the subjects' keys (read, never made or shredded)

    def topics(self, namespace: str) -> list[str]:
        return sorted({qualified(cls.topic, namespace) for cls in self.handlers})


async def read_topics(kafka: KafkaSettings, topics: list[str]) -> list[Envelope]:
    """Every well-formed CloudEvent on the topics, from the beginning up to their end at the start."""
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
                envelopes += [e for r in records if r.offset < ends[tp] and (e := parse(r)) is not None]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return envelopes
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


async def replay(handlers: Mapping[type[Event], Handler], storage: Any, envelopes: list[Envelope], source: str,
                 namespace: str | None = None, first: frozenset[type[Event]] = frozenset()) -> int:
    """Apply the events: those of the types in `first`, then the others, each in time order (so a
    lifecycle event never meets a missing document, even if the clock of the service that emitted
    it ran behind ours). Events read from the broker (namespace given) are checked as the live
    consumer checks them: a forged one, which it dead-lettered, is not applied either."""
    steps = []
    for envelope in envelopes:
        try:
            event = envelope.event()
        except MalformedMessage:
            continue
        handler = handlers.get(type(event)) if event is not None else None
        if handler is not None and namespace is not None and forgery(envelope, event, envelope.topic, namespace):
            continue
        if handler is not None:
            steps.append((type(event) not in first, envelope.time, envelope.id, event, envelope, handler))
    for *_, event, envelope, handler in sorted(steps, key=lambda step: step[:3]):
        await handler(event, Delivery(envelope, source), storage)
    return len(steps)


async def at_rest(db, collections: Iterable[str]) -> None:
    """Drop what the handlers put in the outboxes (those events are on the topics already) and
    leave each document as the relay leaves a published one: an empty outbox, no pending mark.
    A document a replayed event created by an upsert gets the empty outbox it was created with
    live (FerretDB 1.24 ignores `$setOnInsert`, which would have given it one then)."""
    for name in collections:
        await db[name].update_many({PENDING: True}, {"$unset": {PENDING: "", SINCE: ""}, "$set": {OUTBOX: []}})
        await db[name].update_many({OUTBOX: {"$exists": False}}, {"$set": {OUTBOX: []}})


async def copy_configuration(source, target, collections: Iterable[str]) -> int:
    copied = 0
    for name in collections:
        documents = await source[name].find({}).to_list()
        if documents:
            await target[name].insert_many(documents)
            copied += len(documents)
    return copied


async def rebuild(spec: Replay, settings: ServiceSettings, drop: bool = False,
                  configuration_from: str | None = None) -> int:
    client = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        db = client[settings.mongodb_database]
        if drop:
            await client.drop_database(settings.mongodb_database)
        elif await db.list_collection_names():
            raise SystemExit(f"the database {settings.mongodb_database} is not empty: pass --drop to replace it")
        storage = spec.storage(db)
        if hasattr(storage, "init"):
            await storage.init()
        if configuration_from:
            copied = await copy_configuration(client[configuration_from], db, spec.configuration)
            log.info("configuration copied", source=configuration_from, documents=copied)
        envelopes = await read_topics(settings, spec.topics(settings.topic_namespace))
        keys = KeyRing(settings, settings.topic_namespace) if spec.key_ring else None
        if keys:  # the keys as they are now: an erased subject's are gone, its data stays sealed
            await keys.start()
            storage.keys = keys
        try:
            applied = await replay(spec.handlers, storage, envelopes, settings.source, settings.topic_namespace,
                                   spec.first)
        finally:
            if keys:
                await keys.stop()
        await at_rest(db, spec.outbox_collections)
        log.info("database rebuilt", database=settings.mongodb_database, events=len(envelopes), applied=applied)
        return applied
    finally:
        await client.close()


def main(spec: Replay, argv: list[str] | None = None) -> None:
    settings = spec.settings()
    parser = argparse.ArgumentParser(prog=f"python -m {settings.service_name}.rebuild",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--drop", action="store_true", help="drop the database first")
    if spec.configuration:
        parser.add_argument("--configuration-from", metavar="DATABASE", required=True,
                            help=f"the live database to copy {', '.join(spec.configuration)} from (no event "
                                 "carries them)")
    args = parser.parse_args(argv)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    if refusals := settings.kafka_refusals():
        raise SystemExit("refusing to read the topics: " + "; ".join(refusals))
    configuration_from = getattr(args, "configuration_from", None)
    if configuration_from == settings.mongodb_database:
        raise SystemExit("--configuration-from names the database being rebuilt")
    applied = asyncio.run(rebuild(spec, settings, drop=args.drop, configuration_from=configuration_from))
    print(f"rebuilt {settings.mongodb_database}: {applied} events applied", file=sys.stderr)

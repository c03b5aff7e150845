"""The bare baseline: what this broker and this database give a pipeline with no product in it.

Five hops, each its own process with its own database (as each service has): a consumer
reads a record, inserts its event id into an idempotency collection (a duplicate is skipped),
upserts the exchange's state document by `_id`, produces the next hop's record with an
idempotent producer (acks=all) and commits the offset. A client submits an exchange on the
submission topic; the exchange is done when the fifth hop's record arrives. Topics, in a
namespace of their own: `<ns>baseline.submitted` then `<ns>baseline.hop1` .. `hop5`, one
written by each hop.

    python benchmarks/baseline.py hop <k>     one hop (started by run() below)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from cx_shared.kafka import admin_client, client_options
from cx_shared.settings import KafkaSettings
from cx_shared.testing.infra import Infra
from cx_shared.topics import ADMIN

from measure import Groups, Watch, header, now, rate, rounded, spread
from processes import Processes

HOPS = 5
PARTITIONS = 3  # as the product's topics (TOPIC_PARTITIONS)
PADDING = "x" * 600  # a record about the size of one of the product's events


def topic_names(namespace: str) -> list[str]:
    return [f"{namespace}baseline.submitted"] + [f"{namespace}baseline.hop{k}" for k in range(1, HOPS + 1)]


def hop_type(k: int) -> str:
    return f"bench.baseline.hop{k}" if k else "bench.baseline.submitted"


def record_headers(k: int, subject: str) -> list[tuple[str, bytes]]:
    return [("ce_id", str(uuid.uuid4()).encode()), ("ce_type", hop_type(k).encode()),
            ("ce_subject", subject.encode()), ("ce_source", b"/bench/baseline"), ("ce_specversion", b"1.0")]


# --- one hop (its own process) -----------------------------------------------------------------

async def hop(k: int) -> None:
    namespace, kafka = os.environ["BASELINE_NAMESPACE"], KafkaSettings()  # the KAFKA_* the run gives
    topics = topic_names(namespace)
    mongo = AsyncMongoClient(os.environ["MONGODB_URL"], tz_aware=True)
    db = mongo[f"{os.environ['BASELINE_DATABASE']}_hop{k}"]
    consumer = AIOKafkaConsumer(topics[k - 1], **client_options(kafka), group_id=f"{namespace}hop{k}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        async for record in consumer:
            await handle(k, record, db, producer, topics[k])
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
    finally:
        await consumer.stop()
        await producer.stop()
        await mongo.close()


async def handle(k: int, record, db, producer: AIOKafkaProducer, next_topic: str) -> None:
    event_id, subject = header(record, "ce_id"), header(record, "ce_subject")
    try:
        await db.processed.insert_one({"_id": event_id, "at": datetime.now(UTC)})
    except DuplicateKeyError:
        return  # a redelivery: already handled
    await db.exchanges.update_one({"_id": subject}, {"$set": {"hop": k, "last_event": event_id,
                                                              "at": datetime.now(UTC)}}, upsert=True)
    await producer.send_and_wait(next_topic, key=record.key, value=record.value, headers=record_headers(k, subject))


def run_hop(k: int) -> None:
    async def main() -> None:
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await hop(k)
        except asyncio.CancelledError:
            pass
    asyncio.run(main())


# --- the run ------------------------------------------------------------------------------------

async def run(*, applications: int, concurrency: int, infra: Infra, mongo_url: str, run_id: str,
              processes: Processes, timeout: float, keep: bool) -> dict:
    """The same N exchanges with the same C clients through the bare pipeline (its hops run as
    the broker's admin: their topics are not the product's, no ACL names them)."""
    kafka = infra.kafka
    namespace = f"bench{run_id}.base."
    database = f"bench_{run_id}_baseline"
    topics = topic_names(namespace)
    await create_topics(kafka, topics)
    names = [f"baseline-hop{k}" for k in range(1, HOPS + 1)]
    env = {"BASELINE_NAMESPACE": namespace, "BASELINE_DATABASE": database, **infra.kafka_env(ADMIN),
           "MONGODB_URL": mongo_url}
    watch = Watch(kafka, [topics[-1]])
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all", linger_ms=5)
    try:
        for k, name in enumerate(names, start=1):
            processes.start(name, ["benchmarks/baseline.py", "hop", str(k)], env)
        await wait_joined(kafka, [f"{namespace}hop{k}" for k in range(1, HOPS + 1)], topics, processes)
        await watch.start()
        await producer.start()
        return await drive(applications, concurrency, producer, watch, topics[0], timeout)
    finally:
        await producer.stop()
        await watch.stop()
        processes.stop(names)
        if not keep:
            await forget(kafka, topics, mongo_url, [f"{database}_hop{k}" for k in range(1, HOPS + 1)])


async def drive(applications: int, concurrency: int, producer: AIOKafkaProducer, watch: Watch, topic: str,
                timeout: float) -> dict:
    started = now()
    deadline = started + timeout
    latencies: list[float] = []
    done: list[float] = []

    async def client(c: int) -> None:
        for i in range(c, applications, concurrency):
            if now() > deadline:
                return
            subject, sent = f"exchange-{i}", now()
            value = json.dumps({"exchange_id": subject, "padding": PADDING}).encode()
            await producer.send_and_wait(topic, key=subject.encode(), value=value, headers=record_headers(0, subject))
            _, at = await watch.first([f"{hop_type(HOPS)}|{subject}"], deadline - now())
            latencies.append(at - sent)
            done.append(at)

    results = await asyncio.gather(*(client(c) for c in range(concurrency)), return_exceptions=True)
    wall = (max(done) if done else now()) - started
    return {"completed": len(done), "wall_s": rounded(wall), "exchanges_per_s": rounded(rate(len(done), wall), 3),
            "latency_s": spread(latencies),
            "errors": [repr(r) for r in results if isinstance(r, BaseException)][:3]}


async def create_topics(kafka: KafkaSettings, topics: list[str]) -> None:
    async with admin_client(kafka) as admin:
        await admin.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics])


async def wait_joined(kafka: KafkaSettings, groups: list[str], topics: list[str], processes: Processes,
                      timeout: float = 120) -> None:
    """Every hop's consumer has joined its group and holds its partitions, so the clock does
    not start on the hops' start-up."""
    deadline = now() + timeout
    async with Groups(kafka, groups, topics) as lag:
        while not await lag.all_joined():
            processes.check_alive()
            if now() > deadline:
                raise RuntimeError(f"the baseline hops did not join their groups in {timeout:.0f}s")
            await asyncio.sleep(0.3)


async def forget(kafka: KafkaSettings, topics: list[str], mongo_url: str, databases: list[str]) -> None:
    """Leave the shared broker and database as they were: the run's topics and databases go."""
    async with admin_client(kafka) as admin:
        await admin.delete_topics(topics)
    mongo = AsyncMongoClient(mongo_url)
    try:
        for name in databases:
            await mongo.drop_database(name)
    finally:
        await mongo.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "hop":
        run_hop(int(sys.argv[2]))
    else:
        sys.exit(__doc__)

"""The one Kafka producer every service uses, and topic creation at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from cx_shared.envelope import Envelope
from cx_shared.topics import ALL_TOPICS, qualified


class Publisher:
    """Idempotent producer with acks=all: a retried send is never written twice."""

    def __init__(self, bootstrap_servers: str, namespace: str = "", client_id: str = "cx"):
        self.namespace, self.bootstrap_servers, self.client_id = namespace, bootstrap_servers, client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds the running event loop on construction.
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id,
                                          enable_idempotence=True, acks="all", linger_ms=5)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, envelope: Envelope) -> None:
        await self.publish_all([envelope])

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        """Append every event in order (one key's events keep their order on its partition),
        then wait once for the broker to acknowledge them all."""
        acks = [await self._producer.send(
            qualified(e.topic, self.namespace), value=e.kafka_value(), key=e.subject.encode(),
            headers=e.kafka_headers()) for e in envelopes]
        if acks:
            await asyncio.gather(*acks)

    async def send_raw(self, topic: str, value: bytes | None, key: bytes | None,
                       headers: list[tuple[str, bytes]]) -> None:
        await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)


async def ensure_topics(bootstrap_servers: str, namespace: str, partitions: int, replication: int) -> None:
    """Create every topic of the table that does not exist yet (idempotent, safe to race)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(qualified(t, namespace), num_partitions=partitions, replication_factor=replication)
                  for t in ALL_TOPICS if qualified(t, namespace) not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()

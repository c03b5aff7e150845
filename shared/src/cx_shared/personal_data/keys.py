"""Crypto-shredding: personal data that travels in events is sealed (AES-256-GCM) under a data
key of its subject, and the keys live on one compacted topic (`cx.personal_data_keys.v1`, key =
subject id, value = the key; see topics.KEYS_CONFIGS). Applications, which owns the subjects,
makes each key and, on erasure, writes the subject's tombstone: every reader drops its copy,
the cleaner removes the key from the log, and every sealed copy on every topic, dead letters and
replays included, stays unreadable for good.

Keys are held in memory only (the ring), read from the topic at start and followed after: no
database holds one, so there is no copy to forget but the topic's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cx_shared.kafka import Publisher, client_options, stop_reading
from cx_shared.logging import get_logger
from cx_shared.settings import KafkaSettings
from cx_shared.topics import KEYS, qualified

log = get_logger(__name__)
SEALED = "aes256gcm:"  # the prefix of a sealed value: what follows is base64(nonce + ciphertext)


class Unreadable(ValueError):
    """No key for the subject (erased, or never made), or a value not sealed under it."""


def seal(key: bytes, subject_id: str, value: Any) -> str:
    """`value` as JSON, sealed under the subject's key; the subject id is bound to it (a sealed
    contact moved to another subject's event does not open)."""
    nonce = os.urandom(12)
    clear = json.dumps(value, separators=(",", ":"), default=str).encode()  # dates as ISO text
    sealed = AESGCM(key).encrypt(nonce, clear, subject_id.encode())
    return SEALED + base64.b64encode(nonce + sealed).decode()


def unseal(key: bytes | None, subject_id: str, sealed: str) -> Any:
    if key is None or not sealed.startswith(SEALED):
        raise Unreadable(f"no key to open the personal data of {subject_id}")
    raw = base64.b64decode(sealed.removeprefix(SEALED))
    try:
        return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], subject_id.encode()))
    except InvalidTag as exc:
        raise Unreadable(f"not sealed under the key of {subject_id}") from exc


class KeyRing:
    """The subjects' keys as the keys topic has them (the latest value per subject), followed
    from the start of the topic. The owner (applications) also makes and shreds keys."""

    def __init__(self, kafka: KafkaSettings, namespace: str = "", publisher: Publisher | None = None):
        self.kafka, self.topic, self.publisher = kafka, qualified(KEYS, namespace), publisher
        self.keys: dict[str, bytes] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Read the whole topic before the service handles any event: a key made before is known."""
        # Subscribed without a group, the consumer is given every partition of the topic.
        # A long-polling fetch returns the moment a key arrives; the wait only spaces out an idle
        # ring's empty fetches (the default 0.5 s made two a second per service, at rest).
        self._consumer = AIOKafkaConsumer(self.topic, **client_options(self.kafka), group_id=None,
                                          enable_auto_commit=False, auto_offset_reset="earliest",
                                          fetch_max_wait_ms=3000, consumer_timeout_ms=1000)
        await self._consumer.start()
        for _ in range(100):
            self._partitions = sorted(self._consumer.assignment())
            if self._partitions:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"the keys topic {self.topic} cannot be read: the admin creates it at deployment")
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._follow(), name="key-ring")
        await self.catch_up()

    async def stop(self) -> None:
        await stop_reading(self._task, self._consumer)

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=3000)  # returns as soon as a key comes
            for records in batches.values():
                for record in records:
                    self._apply(record.key.decode(), record.value)

    def _apply(self, subject_id: str, value: bytes | None) -> None:
        if value is None:  # the subject's tombstone: erased
            self.keys.pop(subject_id, None)
        else:
            self.keys[subject_id] = base64.b64decode(json.loads(value)["key"])

    async def catch_up(self, timeout: float = 10.0) -> None:
        """Wait until every key written before now has been read."""
        ends = await self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the keys topic {self.topic} was not read to its end in {timeout} s")
            await asyncio.sleep(0.02)

    async def key_of(self, subject_id: str) -> bytes | None:
        """The subject's key; a key not held yet may have been written a moment ago: read on first."""
        if subject_id not in self.keys:
            await self.catch_up()
        return self.keys.get(subject_id)

    async def open(self, subject_id: str, sealed: str) -> Any:
        return unseal(await self.key_of(subject_id), subject_id, sealed)

    # --- the owner's ---------------------------------------------------------------------------

    async def key_for(self, subject_id: str) -> bytes:
        """The subject's key, made and on the topic (acknowledged by every replica) before any
        event sealed with it can be: a reader that meets the event finds the key."""
        if (key := await self.key_of(subject_id)) is not None:
            return key
        key = AESGCM.generate_key(bit_length=256)
        value = json.dumps({"subject_id": subject_id, "key": base64.b64encode(key).decode()}).encode()
        await self.publisher.send_raw(self.topic, value, subject_id.encode(), [])
        self.keys[subject_id] = key
        return key

    async def shred(self, subject_id: str) -> None:
        """The subject's tombstone on the topic: every reader drops the key, the cleaner the log's copies."""
        await self.publisher.send_raw(self.topic, None, subject_id.encode(), [])
        self.keys.pop(subject_id, None)

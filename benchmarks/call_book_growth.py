"""How a call's storage grows with its applications: time per admission and bytes stored.

Admits N applications to one automatic call through the service's own read-decide-write
path (assessment.workflow.admit: the envelope's compare-and-set and one entry document per
application) on the real database, then prints the time per admission over the first and
the last tenth, and the bytes stored per application. With a concurrency above 1, that many
admissions race on the envelope at a time, as the consumer runs the keys of one batch.
Run: make bench-call-book BENCH_APPLICATIONS=1000 (or: call_book_growth.py N [concurrency])
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import date, timedelta

import bson
from pymongo import AsyncMongoClient

from cx_shared.envelope import Envelope
from cx_shared.lump_sums import exchange_lump_sum

from assessment.domain import CallBook
from assessment.rules import Candidate, Party
from assessment.storage import CALLS, ENTRIES, Storage
from assessment.workflow import admit

ESTIMATE = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents


def candidate(n: int) -> Candidate:
    start = date(2026, 3, 2) + timedelta(weeks=n % 40)
    return Candidate(f"app-{n}", Party(f"v-{n}", "FR", "cluster_organisation"),
                     Party(f"h-{n}", "DE", "cluster_organisation"), start, start + timedelta(days=4), 5,
                     date(2026, 2, 1))


def wrap(event, subject) -> Envelope:
    return Envelope.wrap(event, source="/benchmark", subject=subject)


async def admit_all(storage: Storage, applications: int, concurrency: int) -> list[float]:
    """Seconds per admission, in arrival order (a concurrent batch shares its wall time)."""
    timings: list[float] = []
    for first in range(0, applications, concurrency):
        batch = range(first, min(first + concurrency, applications))
        began = time.perf_counter()
        await asyncio.gather(*(admit(storage, "call-b", candidate(n), ESTIMATE, wrap, processed=f"submitted-{n}")
                               for n in batch))
        timings += [(time.perf_counter() - began) / len(batch)] * len(batch)
    return timings


async def bytes_stored(db) -> int:
    return sum([len(bson.encode(doc)) async for doc in db[CALLS].find({})]
               + [len(bson.encode(doc)) async for doc in db[ENTRIES].find({})])


async def main(applications: int, concurrency: int) -> None:
    client = AsyncMongoClient(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"), tz_aware=True)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    storage = Storage(client[name])
    await storage.init()
    # half the applications fit the envelope: the rest exercise the waiting list
    book = CallBook.open("call-b", "p-1", date(2026, 1, 1), date(2026, 12, 31), applications // 2 * ESTIMATE,
                         "automatic", ["FR", "DE"], "default-v1")
    await storage.open_call(book)
    try:
        timings = await admit_all(storage, applications, concurrency)
        envelope = await storage.envelope("call-b")
        assert envelope["envelope_left_cents"] >= 0
        stored = await bytes_stored(client[name])
        tenth = max(1, applications // 10)
        first, last = 1000 * sum(timings[:tenth]) / tenth, 1000 * sum(timings[-tenth:]) / tenth
        print(f"applications admitted       {applications} ({concurrency} at a time)")
        print(f"envelope left, waiting      {envelope['envelope_left_cents']} cents, {envelope['waiting']} waiting")
        print(f"bytes stored                {stored:,} ({stored / applications:,.0f} per application)")
        print(f"ms per admission, first 10% {first:.1f}")
        print(f"ms per admission, last 10%  {last:.1f} ({100 * (last / first - 1):+.0f}%)")
    finally:
        await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, int(sys.argv[2]) if len(sys.argv) > 2 else 1))

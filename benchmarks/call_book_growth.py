"""How a call book grows with its applications: stored bytes and time per decision.

Admits N applications to one automatic call through the same read-decide-write path the
service uses (assessment.workflow.act_on_call) on the real database, then prints the bytes
the chain of revisions holds and the time per admission at the start and at the end.
Run: make bench BENCH_APPLICATIONS=300
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

from assessment.domain import CallBook, estimate_lump_sum_cents
from assessment.rules import Candidate, Party
from assessment.storage import CALL_BOOKS, FULL_REVISIONS, Storage
from assessment.workflow import act_on_call


def candidate(n: int) -> Candidate:
    start = date(2026, 3, 2) + timedelta(weeks=n % 40)
    return Candidate(f"app-{n}", Party(f"v-{n}", "FR", "cluster_organisation"),
                     Party(f"h-{n}", "DE", "cluster_organisation"), start, start + timedelta(days=4), 5,
                     date(2026, 2, 1))


def wrap(event, subject) -> Envelope:
    return Envelope.wrap(event, source="/benchmark", subject=subject)


async def main(applications: int) -> None:
    client = AsyncMongoClient(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"), tz_aware=True)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    storage = Storage(client[name])
    await storage.init()
    estimate = estimate_lump_sum_cents(5, "standard")
    book = CallBook.open("call-b", "p-1", date(2026, 1, 1), date(2026, 12, 31), applications * estimate,
                         "automatic", ["FR", "DE"], "default-v1")
    await storage.open_call(book, [], processed="published")
    timings = []
    try:
        for n in range(applications):
            began = time.perf_counter()
            await act_on_call(storage, "call-b", lambda b, n=n: b.admit(candidate(n), estimate), wrap,
                              processed=f"submitted-{n}")
            timings.append(time.perf_counter() - began)
        docs = [doc async for doc in client[name][CALL_BOOKS].find({})]
        stored = sum(len(bson.encode(doc)) for doc in docs)
        latest = max(docs, key=lambda d: d["revision"])
        tenth = max(1, applications // 10)
        print(f"applications admitted       {applications}")
        print(f"revisions stored            {len(docs)} (the newest {FULL_REVISIONS} with the whole state)")
        print(f"bytes stored, all revisions {stored:,} ({stored / applications:,.0f} per application)")
        print(f"bytes of the latest state   {len(bson.encode(latest)):,}")
        print(f"ms per admission, first 10% {1000 * sum(timings[:tenth]) / tenth:.1f}")
        print(f"ms per admission, last 10%  {1000 * sum(timings[-tenth:]) / tenth:.1f}")
    finally:
        await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))

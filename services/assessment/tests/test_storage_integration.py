"""The call's storage on the real database: an envelope document changed by compare-and-set
and one document per application. Concurrent writers lose nothing and never spend beyond
the envelope, a processed event is applied once, and a crash between the writes of one
decision, followed by the event's redelivery, neither loses nor doubles anything."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import bson
import pytest

from cx_shared import tally
from cx_shared.envelope import Envelope
from cx_shared.errors import NotFound
from cx_shared.events import event_class
from cx_shared.lump_sums import exchange_lump_sum

from assessment.domain import WAITLISTED, Assessor, CallBook
from assessment.rules import Candidate, Party
from assessment.storage import ENTRIES, Storage, committed
from assessment import workflow
from assessment.workflow import Needs, act_on_call, admit

pytestmark = pytest.mark.infra

ESTIMATE = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents


class Crash(Exception):
    """The process dies here."""


@pytest.fixture
def replicas(monkeypatch):
    """Every decision as if in a replica of its own: no queue in the process, they race on
    the envelope's compare-and-set."""
    monkeypatch.setattr(workflow, "_turn", lambda call_id: asyncio.Lock())


def wrap(event, subject) -> Envelope:
    return Envelope.wrap(event, source="/test", subject=subject)


def candidate(n: int, visitor: str | None = None, start: date = date(2026, 3, 2)) -> Candidate:
    return Candidate(f"app-{n}", Party(visitor or f"v-{n}", "FR", "cluster_organisation"),
                     Party(f"h-{n}", "DE", "cluster_organisation"), start, start + timedelta(days=4), 5,
                     date(2026, 2, 1))


async def open_call(mongo_db, call_id: str, budget: int, mode: str = "automatic") -> Storage:
    storage = Storage(mongo_db)
    await storage.init()
    book = CallBook.open(call_id, "p-1", date(2026, 1, 1), date(2026, 12, 31), budget, mode, ["FR", "DE"], "d")
    assert await storage.open_call(book)
    assert not await storage.open_call(book)  # redelivered CallPublished: no second envelope
    return storage


def kinds(doc: dict) -> list[str]:
    """The events waiting in an entry's outbox, by contract."""
    return [event_class(e["type"]).__name__ for e in doc["outbox"]]


async def entries(mongo_db, call_id: str) -> dict[str, dict]:
    return {doc["_id"]: doc async for doc in mongo_db[ENTRIES].find({"call_id": call_id})}


async def test_concurrent_changes_of_one_call_are_all_kept(mongo_db, replicas):
    storage = await open_call(mongo_db, "call-s", 1_000_000, "panel")

    async def rule_set_changes(who: str, times: int) -> None:
        for _ in range(times):
            await act_on_call(storage, "call-s", lambda b: b.change_rule_set(who), wrap)

    await asyncio.gather(*(rule_set_changes(who, 8) for who in ("ann", "ben", "cid")))
    envelope = await storage.envelope("call-s")
    assert envelope["seq"] == 24 and len(envelope["policies"]) == 25  # no change lost
    assert len(envelope["outbox"]) == 24  # each change's event kept with it

    # the same cause applied twice: the second time changes nothing
    def tighten(b: CallBook) -> list:
        return b.change_rule_set("pm", None, threshold=70)
    assert await act_on_call(storage, "call-s", tighten, wrap, processed="event-7") is not None
    assert await act_on_call(storage, "call-s", tighten, wrap, processed="event-7") is None
    assert (await storage.envelope("call-s"))["seq"] == 25
    with pytest.raises(NotFound, match="not in the assessment"):
        await act_on_call(storage, "call-s", lambda b: b.claim("nope", Assessor("ann")), wrap, needs=Needs("nope"))
    assert [doc["_id"] for doc in await storage.calls_of_partnership("p-1")] == ["call-s"]


async def test_each_application_is_a_document_and_the_envelope_does_not_grow(mongo_db):
    storage = await open_call(mongo_db, "call-g", 3 * ESTIMATE)
    sizes = []
    for n in range(30):
        await admit(storage, "call-g", candidate(n), ESTIMATE, wrap, processed=f"submitted-{n}")
        sizes.append(len(bson.encode(await storage.envelope("call-g"))))
    docs = await entries(mongo_db, "call-g")
    assert len(docs) == 30 and all("pending" not in doc for doc in docs.values())
    assert [docs[f"app-{n}"]["status"] for n in (0, 2, 3, 29)] == ["approved", "approved", "waitlisted", "waitlisted"]
    assert all(doc["processed"] == [f"submitted-{doc['arrival'] - 1}"] for doc in docs.values())
    assert all(len(doc["outbox"]) == 2 for doc in docs.values())  # EligibilityChecked + the decision
    envelope = await storage.envelope("call-g")
    assert (envelope["envelope_left_cents"], envelope["waiting"], envelope["next_arrival"]) == (0, 27, 31)
    assert sizes[-1] - sizes[0] < 64 * 30  # only the ring of causes grows, up to its fixed size
    # a redelivered submission changes nothing, however old
    assert await admit(storage, "call-g", candidate(0), ESTIMATE, wrap, processed="submitted-0") is None


async def test_concurrent_admissions_never_spend_beyond_the_envelope(mongo_db, replicas):
    storage = await open_call(mongo_db, "call-c", 10 * ESTIMATE)
    await asyncio.gather(*(admit(storage, "call-c", candidate(n), ESTIMATE, wrap, processed=f"submitted-{n}")
                           for n in range(40)))
    docs = await entries(mongo_db, "call-c")
    envelope = await storage.envelope("call-c")
    approved = [d for d in docs.values() if d["status"] == "approved"]
    assert len(approved) == 10 and sum(d["reserved_cents"] for d in approved) == 10 * ESTIMATE
    assert envelope["envelope_left_cents"] == 0 and envelope["waiting"] == 30
    assert sorted(d["arrival"] for d in docs.values()) == list(range(1, 41))  # each arrival number once
    # arrival order holds: nobody approved after the first one waitlisted
    first_waiting = min(d["arrival"] for d in docs.values() if d["status"] == WAITLISTED)
    assert all(d["arrival"] < first_waiting for d in approved)


async def test_simultaneous_overlapping_applications_of_one_visitor_are_not_both_admitted(mongo_db, replicas):
    storage = await open_call(mongo_db, "call-o", 10 * ESTIMATE)
    await asyncio.gather(*(admit(storage, "call-o", candidate(n, visitor="v-same"), ESTIMATE, wrap,
                                 processed=f"submitted-{n}") for n in range(4)))
    statuses = sorted(doc["status"] for doc in (await entries(mongo_db, "call-o")).values())
    assert statuses == ["approved", "rejected", "rejected", "rejected"]


async def test_crash_after_the_commit_is_finished_by_the_redelivery(mongo_db, monkeypatch):
    storage = await open_call(mongo_db, "call-r", 2 * ESTIMATE)
    finish = Storage._finish

    async def dies(self, *args, **kwargs):
        raise Crash()
    monkeypatch.setattr(Storage, "_finish", dies)
    with pytest.raises(Crash):
        await admit(storage, "call-r", candidate(1), ESTIMATE, wrap, processed="submitted-1")
    monkeypatch.setattr(Storage, "_finish", finish)
    doc = (await entries(mongo_db, "call-r"))["app-1"]
    assert committed(doc) is None and doc["pending"]["cause"] == "submitted-1"
    assert (await storage.envelope("call-r"))["envelope_left_cents"] == ESTIMATE  # committed

    # the redelivery finishes the entry from what is stored, and commits nothing again
    assert await admit(storage, "call-r", candidate(1), ESTIMATE, wrap, processed="submitted-1") is None
    assert await admit(storage, "call-r", candidate(1), ESTIMATE, wrap, processed="submitted-1") is None
    doc = (await entries(mongo_db, "call-r"))["app-1"]
    assert doc["status"] == "approved" and "pending" not in doc and doc["processed"] == ["submitted-1"]
    assert kinds(doc) == ["EligibilityChecked", "ApplicationApproved"]
    envelope = await storage.envelope("call-r")
    assert (envelope["envelope_left_cents"], envelope["next_arrival"], envelope["seq"]) == (ESTIMATE, 2, 1)


async def dies_before_the_commit(storage: Storage, call_id: str, monkeypatch) -> None:
    """Admits app-1 until its entry is prepared, and dies before the envelope's compare-and-set."""
    async def dies(*args, **kwargs):
        raise Crash()
    with monkeypatch.context() as patched:
        patched.setattr(tally, "store", dies)
        with pytest.raises(Crash):
            await admit(storage, call_id, candidate(1), ESTIMATE, wrap, processed="submitted-1")


async def test_crash_before_the_commit_is_decided_again_by_the_redelivery(mongo_db, monkeypatch):
    storage = await open_call(mongo_db, "call-b", 2 * ESTIMATE)
    await dies_before_the_commit(storage, "call-b", monkeypatch)
    assert (await entries(mongo_db, "call-b"))["app-1"]["pending"]["cause"] == "submitted-1"
    assert (await storage.envelope("call-b"))["envelope_left_cents"] == 2 * ESTIMATE  # nothing committed

    # another application moves the envelope on meanwhile: the crashed attempt is abandoned
    await admit(storage, "call-b", candidate(2), ESTIMATE, wrap, processed="submitted-2")
    assert await admit(storage, "call-b", candidate(1), ESTIMATE, wrap, processed="submitted-1") is not None
    assert await admit(storage, "call-b", candidate(1), ESTIMATE, wrap, processed="submitted-1") is None
    docs = await entries(mongo_db, "call-b")
    assert [(docs[a]["status"], docs[a]["arrival"]) for a in ("app-1", "app-2")] == [("approved", 2), ("approved", 1)]
    assert all("pending" not in d and len(d["outbox"]) == 2 for d in docs.values())
    envelope = await storage.envelope("call-b")
    assert (envelope["envelope_left_cents"], envelope["next_arrival"]) == (0, 3)


async def test_a_writer_that_died_before_committing_is_fenced_off(mongo_db, monkeypatch):
    storage = await open_call(mongo_db, "call-d", 2 * ESTIMATE)
    await dies_before_the_commit(storage, "call-d", monkeypatch)
    # nothing else happens in the call: the redelivery waits for the dead writer, then fences it off
    assert await admit(storage, "call-d", candidate(1), ESTIMATE, wrap, processed="submitted-1") is not None
    doc = (await entries(mongo_db, "call-d"))["app-1"]
    assert doc["status"] == "approved" and "pending" not in doc and len(doc["outbox"]) == 2
    envelope = await storage.envelope("call-d")
    assert (envelope["envelope_left_cents"], envelope["seq"]) == (ESTIMATE, 2)  # the fence, then the commit


async def test_a_promotion_left_half_done_is_finished_before_the_entry_changes_again(mongo_db, monkeypatch):
    storage = await open_call(mongo_db, "call-p", ESTIMATE)
    for n in (1, 2):
        await admit(storage, "call-p", candidate(n), ESTIMATE, wrap, processed=f"submitted-{n}")
    finish = Storage._finish
    calls = []

    async def dies_on_the_second(self, *args, **kwargs):  # app-1 is finished, app-2 (promoted) is not
        calls.append(args[0])
        if len(calls) == 2:
            raise Crash()
        await finish(self, *args, **kwargs)
    monkeypatch.setattr(Storage, "_finish", dies_on_the_second)
    with pytest.raises(Crash):
        await act_on_call(storage, "call-p", lambda b: b.commitment_released("app-1", "no-show"), wrap,
                          needs=Needs("app-1", statuses=(WAITLISTED,)))  # a request: never redelivered
    monkeypatch.setattr(Storage, "_finish", finish)
    assert calls == ["app-1", "app-2"]

    # the next decision about app-2 finds its promotion committed and finishes it first
    result = await act_on_call(storage, "call-p", lambda b: b.grant_refused("app-2", "budget"), wrap,
                               needs=Needs("app-2"))
    assert result is not None
    doc = (await entries(mongo_db, "call-p"))["app-2"]
    assert kinds(doc) == ["EligibilityChecked", "ApplicationWaitlisted", "ApplicationApproved",
                          "ApplicationWaitlisted"] and doc["status"] == "waitlisted"
    envelope = await storage.envelope("call-p")
    assert (envelope["envelope_left_cents"], envelope["waiting"]) == (ESTIMATE, 1)

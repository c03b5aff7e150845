"""The call-book store on the real database: concurrent writers lose nothing, a processed
event is applied once, and the chain of revisions keeps every event."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from cx_shared.envelope import Envelope

from assessment.domain import Assessor, CallBook
from assessment.storage import FULL_REVISIONS, Storage
from assessment.workflow import act_on_call

pytestmark = pytest.mark.infra


def wrap(event, subject) -> Envelope:
    return Envelope.wrap(event, source="/test", subject=subject)


async def test_concurrent_changes_of_one_call_book_are_all_kept(mongo_db):
    storage = Storage(mongo_db)
    await storage.init()
    book = CallBook.open("call-s", "p-1", date(2026, 1, 1), date(2026, 12, 31), 1_000_000, "panel", ["FR"], "d")
    assert await storage.open_call(book, [], processed="published-1")
    assert not await storage.open_call(book, [], processed="published-1")  # redelivered: no second book

    async def rule_set_changes(who: str, times: int) -> None:
        for _ in range(times):
            await act_on_call(storage, "call-s", lambda b: b.change_rule_set(who), wrap)

    await asyncio.gather(*(rule_set_changes(who, 8) for who in ("ann", "ben", "cid")))
    latest, revision, _ = await storage.load_call("call-s")
    assert revision == 24 and latest.policy.version == 25  # no change lost
    outboxes = [doc["outbox"] async for doc in mongo_db["call_books"].find({"call_id": "call-s"})]
    assert sum(len(o) for o in outboxes) == 24  # each change's event kept with it

    # the same cause applied twice: the second time changes nothing
    def tighten(b: CallBook) -> list:
        return b.change_rule_set("pm", None, threshold=70)
    assert await act_on_call(storage, "call-s", tighten, wrap, processed="event-7") is not None
    assert await act_on_call(storage, "call-s", tighten, wrap, processed="event-7") is None
    assert (await storage.load_call("call-s"))[1] == 25
    with pytest.raises(Exception, match="not in the assessment"):
        await act_on_call(storage, "call-s", lambda b: b.claim("nope", Assessor("ann")), wrap)


async def test_only_the_newest_revisions_keep_the_whole_state_and_old_causes_are_still_known(mongo_db):
    storage = Storage(mongo_db)
    await storage.init()
    book = CallBook.open("call-h", "p-1", date(2026, 1, 1), date(2026, 12, 31), 1_000_000, "panel", ["FR"], "d")
    assert await storage.open_call(book, [], processed="published-h")
    for n in range(12):
        assert await act_on_call(storage, "call-h", lambda b: b.change_rule_set("pm"), wrap, processed=f"cause-{n}")

    revisions = {doc["revision"]: doc async for doc in mongo_db["call_books"].find({"call_id": "call-h"})}
    assert sorted(revisions) == list(range(13))
    full = sorted(r for r, doc in revisions.items() if {"entries", "policies", "causes"} <= set(doc))
    assert full == list(range(13 - FULL_REVISIONS, 13))
    assert all(len(doc["outbox"]) == 1 for r, doc in revisions.items() if r > 0)  # the events stay to be relayed
    # a redelivery of the oldest causes still changes nothing
    assert {"published-h", "cause-0", "cause-11"} <= set(revisions[12]["causes"])
    assert {"published-h", "cause-0"} <= set((await storage.load_call("call-h")).causes)
    assert await act_on_call(storage, "call-h", lambda b: b.change_rule_set("pm"), wrap, processed="cause-0") is None
    latest, revision, _ = await storage.load_call("call-h")
    assert revision == 12 and latest.policy.version == 13
    fresh = Storage(mongo_db)  # another process, with no hint of the latest revision
    assert (await fresh.load_call("call-h"))[1] == 12 and await fresh.load_call("call-none") is None
    assert [b.call_id for b in await storage.calls_of_partnership("p-1")] == ["call-h"]

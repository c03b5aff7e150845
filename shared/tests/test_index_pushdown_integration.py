"""The database answers the services' queries on indexed fields from the index: each column of
a compound index, and date ranges, not only the first field's equality. In local mode that is
deploy/ferretdb's patch to FerretDB 1.24 (which alone pushes no range down, and compares the
other fields by containment, which no index serves); MongoDB does it natively.

A waitlist look-up compares a call (the same for every application of a busy call) and a
status: with only the call served, each admission read every entry of the call."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from cx_shared.query_audit import plan_nodes, plan_of, scanning

pytestmark = pytest.mark.infra

AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def index_conditions(plan) -> str:
    """What the index itself narrows on: PostgreSQL's index conditions, MongoDB's index bounds."""
    return " ".join(str(node.get("Index Cond", "")) + json.dumps(node.get("indexBounds", {}))
                    for node in plan_nodes(plan))


async def test_both_columns_of_a_compound_index_narrow_the_read(mongo_db):
    await mongo_db.entries.create_index([("call_id", 1), ("status", 1)])
    await mongo_db.entries.insert_many([{"_id": f"a{i}", "call_id": "busy-call", "status": "approved"}
                                        for i in range(50)])
    plan = await plan_of(mongo_db, "entries", {"call_id": "busy-call", "status": "waitlisted"})
    assert not scanning(plan)
    assert "status" in index_conditions(plan), plan


async def test_a_date_range_on_an_indexed_field_narrows_the_read(mongo_db):
    await mongo_db.reminders.create_index([("status", 1), ("due_at", 1)])
    plan = await plan_of(mongo_db, "reminders", {"status": "scheduled", "due_at": {"$lte": AT}})
    assert not scanning(plan)
    assert "due_at" in index_conditions(plan), plan


async def test_indexed_equalities_and_date_ranges_return_exactly_what_the_filter_matches(mongo_db):
    """The pushdown only narrows: values of other types, nulls and missing fields are still
    judged by the filter itself."""
    await mongo_db.r.create_index([("status", 1), ("due_at", 1)])
    rng = random.Random(7)
    docs = []
    for i in range(400):
        doc = {"_id": i, "status": rng.choice(["scheduled", "sent"])}
        value = rng.choice(["date", "date", None, "text", 5, "missing"])
        if value == "date":
            doc["due_at"] = AT + timedelta(minutes=rng.randint(-600, 600), milliseconds=rng.randint(0, 999))
        elif value != "missing":
            doc["due_at"] = value
        docs.append(doc)
    await mongo_db.r.insert_many(docs)
    compare = {"$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
               "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b}
    for op, holds in compare.items():
        for at in (AT, AT + timedelta(minutes=90, milliseconds=1), docs[0].get("due_at", AT)):
            if not isinstance(at, datetime):
                continue
            got = {d["_id"] async for d in mongo_db.r.find({"status": "scheduled", "due_at": {op: at}})}
            want = {d["_id"] for d in docs if d["status"] == "scheduled" and isinstance(d.get("due_at"), datetime)
                    and holds(d["due_at"], at)}
            assert got == want, (op, at, got ^ want)
    first_due = await mongo_db.r.find_one({"status": "scheduled", "due_at": {"$lte": AT}}, sort=[("due_at", 1)])
    due = [d for d in docs if d["status"] == "scheduled" and isinstance(d.get("due_at"), datetime) and d["due_at"] <= AT]
    assert first_due["_id"] == min(due, key=lambda d: d["due_at"])["_id"]

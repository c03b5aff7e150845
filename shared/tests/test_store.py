"""The single-document change builder: state, events and idempotency mark in one update."""

from datetime import UTC, datetime

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationWithdrawn
from cx_shared.store import change, new_document, not_processed, public


def envelope() -> Envelope:
    return Envelope.wrap(ApplicationWithdrawn(application_id="a", call_id="c"), source="/s", subject="a")


def test_change_pushes_events_and_processed_mark_beside_the_state():
    env = envelope()
    update = change({"$set": {"status": "withdrawn"}, "$push": {"history": 1}}, events=[env], processed="e-1")
    assert update["$set"] == {"status": "withdrawn", "outbox_pending": True}  # the relay finds it by this mark
    assert update["$min"]["outbox_since"] <= datetime.now(UTC)
    assert update["$push"]["history"] == 1
    assert update["$push"]["outbox"] == {"$each": [env.to_outbox()]}
    assert update["$push"]["processed"] == "e-1"


def test_change_without_events_adds_no_push():
    assert change({"$inc": {"n": 1}}) == {"$inc": {"n": 1}}


def test_not_processed_guards_the_filter():
    assert not_processed({"_id": "x"}, "e-1") == {"_id": "x", "processed": {"$ne": "e-1"}}
    assert not_processed({"_id": "x"}, None) == {"_id": "x"}


def test_new_document_and_public_view():
    env = envelope()
    doc = new_document({"_id": "a", "status": "submitted"}, events=[env], processed="e-1")
    assert doc["outbox"] == [env.to_outbox()] and doc["processed"] == ["e-1"] and doc["outbox_pending"] is True
    assert "outbox_pending" not in new_document({"_id": "b"}, processed="e-2")
    assert public(doc) == {"_id": "a", "status": "submitted"}

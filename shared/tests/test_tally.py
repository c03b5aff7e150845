"""The compare-and-set of a hot document, and what its ring of causes can tell afterwards."""

import pytest

from cx_shared import tally


def after(changes: list[str]) -> dict:
    """A document as the compare-and-set leaves it after one change per cause, in order."""
    doc = {"_id": "call-1", tally.SEQ: 0, tally.CAUSES: {}}
    for cause in changes:
        _, update = tally.compare_and_set(doc, {}, cause=cause)
        doc = {"_id": "call-1", tally.SEQ: update["$set"][tally.SEQ],
               tally.CAUSES: {**doc[tally.CAUSES], update_slot(update): cause}}
    return doc


def update_slot(update: dict) -> str:
    return next(k.split(".", 1)[1] for k in update["$set"] if k.startswith(f"{tally.CAUSES}."))


def test_landed_tells_whose_change_stood_at_a_seq():
    doc = after(["e1", "e2", "e3"])
    assert tally.landed(doc, 1, "e2") is True
    assert tally.landed(doc, 1, "e9") is False  # someone else changed it at seq 1
    assert tally.landed(doc, 3, "e4") is None  # not past seq 3 yet: it still can land
    assert tally.applied(doc, "e3") and not tally.applied(doc, "e9")


def test_landed_refuses_to_guess_past_the_ring(monkeypatch):
    monkeypatch.setattr(tally, "RING", 2)
    doc = after(["e1", "e2", "e3", "e4"])
    assert tally.landed(doc, 2, "e3") is True
    with pytest.raises(tally.Forgotten):
        tally.landed(doc, 0, "e1")

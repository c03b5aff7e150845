"""The rebuild's replay on the real database: documents first, then the lifecycle, so an event
stamped earlier than the submission (another service's clock behind) still folds in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationSubmitted
from cx_shared.events.assessment import ApplicationApproved, EligibilityChecked
from cx_shared.events.common import Contact, Participant
from cx_shared.rebuild import replay
from applications.handlers import CREATIONS, HANDLERS
from applications.storage import Storage

SOURCE = "/clusterxchange/applications"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(event, minutes: int, producer: str) -> Envelope:
    envelope = Envelope.wrap(event, source=f"/clusterxchange/{producer}", subject="app-1")
    return envelope.model_copy(update={"time": T0 + timedelta(minutes=minutes)})


def participant(org_id: str, country: str) -> Participant:
    return Participant(organisation_id=org_id, legal_name=org_id, country=country, city="C",
                       organisation_type="cluster_organisation", contact=Contact(name="n", email="n@x.example"))


async def test_replay_folds_a_lifecycle_event_stamped_before_its_submission(mongo_db):
    submitted = at(ApplicationSubmitted(
        application_id="app-1", call_id="c", partnership_id="p", visitor=participant("v", "FR"),
        host=participant("h", "DE"), purposes=["learn_from_other_cluster"], planned_start=date(2027, 1, 4),
        planned_end=date(2027, 1, 8), working_days=5, submitted_at=T0), 10, "applications")
    checked = at(EligibilityChecked(application_id="app-1", call_id="c", eligible=True, rule_set_version="v",
                                    outcomes=[]), 8, "assessment")
    approved = at(ApplicationApproved(application_id="app-1", call_id="c"), 9, "assessment")
    storage = Storage(mongo_db)
    await storage.init()
    assert await replay(HANDLERS, storage, [approved, checked, submitted], SOURCE, first=CREATIONS) == 3
    assert await replay(HANDLERS, storage, [approved, submitted], SOURCE, first=CREATIONS) == 2  # again: no change
    doc = await storage.with_timeline(await mongo_db.applications.find_one({"_id": "app-1"}))
    assert doc["status"] == "approved"
    assert [e["event"] for e in doc["timeline"]] == ["application.submitted", "eligibility.checked",
                                                     "application.approved"]
    assert doc["revision"] == 3

"""The exchange's state machine and timeline fold (pure, no I/O)."""

from datetime import UTC, datetime, timedelta

import pytest

from cx_shared.errors import Conflict
from applications import domain
from applications.domain import STATUS_AFTER, TRANSITIONS, Status, fold, transition

LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in sorted(targets)]
ILLEGAL_SAMPLE = [
    (Status.SUBMITTED, Status.GRANT_COMMITTED),  # no money before assessment and the host
    (Status.APPROVED, Status.GRANT_COMMITTED),  # nor before the host confirms
    (Status.REJECTED, Status.APPROVED),
    (Status.IN_PROGRESS, Status.WITHDRAWN),  # too late to withdraw once started: cancel
    (Status.COMPLETED, Status.CANCELLED),
    (Status.WITHDRAWN, Status.SUBMITTED),
    (Status.CANCELLED, Status.HOST_CONFIRMED),
    (Status.CLOSED, Status.REPORTED),
    (Status.DRAFT, Status.APPROVED),
    (Status.GRANT_COMMITTED, Status.HOST_CONFIRMED),
]


def test_every_status_has_its_transitions_declared():
    assert set(TRANSITIONS) == set(Status)
    assert {Status.CLOSED, Status.WITHDRAWN, Status.CANCELLED} == {s for s, t in TRANSITIONS.items() if not t}


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_legal_transition(source, target):
    assert transition(source, target) is target


@pytest.mark.parametrize(("source", "target"), ILLEGAL_SAMPLE)
def test_illegal_transition_is_a_conflict_with_the_reason(source, target):
    with pytest.raises(Conflict) as refused:
        transition(source, target)
    assert f"{source} cannot become {target}" in refused.value.detail
    assert refused.value.status == 409


def test_final_states_say_so():
    with pytest.raises(Conflict, match="final"):
        transition(Status.WITHDRAWN, Status.WITHDRAWN)


def test_every_mapped_event_leads_somewhere_reachable():
    reachable = {t for targets in TRANSITIONS.values() for t in targets}
    assert set(STATUS_AFTER.values()) <= reachable


T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def entry(name: str, minutes: int, event_id: str | None = None, **data):
    return domain.timeline_entry(event_id=event_id or f"{name}-{minutes}", ce_type=f"eu.clusterxchange.{name}.v1",
                                 source="/test", at=T0 + timedelta(minutes=minutes), data=data)


SUBMITTED = dict(visitor={"legal_name": "V", "country": "FR"}, host={"legal_name": "H", "country": "DE"},
                 planned_start="2026-06-01", planned_end="2026-06-05", working_days=5)


def test_the_foundation_flow_folds_to_grant_committed():
    timeline, status = fold([
        entry("application.submitted", 0, **SUBMITTED),
        entry("eligibility.checked", 1, eligible=True, outcomes=[], rule_set_version="default-v1"),
        entry("application.approved", 2),
        entry("email.sent", 3, template="application_approved", recipient_role="visitor", language="fr"),
        entry("host.accepted", 4, host_id="org-h"),
        entry("grant.committed", 5, travel_cents=27500, subsistence_cents=50000, total_cents=77500,
              rule_set_version="default-v1", available_after_cents=0),
    ])
    assert status is Status.GRANT_COMMITTED
    assert [e["status"] for e in timeline] == ["submitted", "under_assessment", "approved", "approved",
                                               "host_confirmed", "grant_committed"]
    assert "EUR 775.00" in timeline[-1]["summary"] and "application_approved" in timeline[3]["summary"]


def test_events_arriving_out_of_order_fold_in_time_order_and_duplicates_count_once():
    grant = entry("grant.committed", 5, travel_cents=1, subsistence_cents=1, total_cents=2,
                  rule_set_version="v", available_after_cents=0)
    accepted = entry("host.accepted", 4, host_id="h")
    timeline, status = fold([entry("application.submitted", 0, **SUBMITTED), grant, entry("application.approved", 2),
                             accepted, grant, accepted])
    assert status is Status.GRANT_COMMITTED
    assert [e["event"] for e in timeline] == ["application.submitted", "application.approved", "host.accepted",
                                              "grant.committed"]


def test_the_submission_comes_first_even_when_another_clock_ran_behind():
    timeline, status = fold([entry("application.approved", -2), entry("application.submitted", 0, **SUBMITTED)])
    assert status is Status.APPROVED
    assert [e["event"] for e in timeline] == ["application.submitted", "application.approved"]


def test_an_event_the_machine_does_not_allow_stays_in_the_timeline_and_changes_nothing():
    timeline, status = fold([entry("application.submitted", 0, **SUBMITTED),
                             entry("application.rejected", 1, reasons=["host and visitor in the same country"]),
                             entry("grant.committed", 2, travel_cents=1, subsistence_cents=1, total_cents=2,
                                   rule_set_version="v", available_after_cents=0)])
    assert status is Status.REJECTED
    assert len(timeline) == 3 and timeline[-1]["status"] == "rejected"
    assert "same country" in timeline[1]["summary"]


def test_a_refused_grant_waitlists_until_money_is_committed():
    _, status = fold([entry("application.submitted", 0, **SUBMITTED), entry("application.approved", 1),
                      entry("host.accepted", 2, host_id="h"),
                      entry("grant.refused", 3, reason="budget exhausted", required_cents=100, available_cents=0)])
    assert status is Status.WAITLISTED


def test_e_a_released_commitment_ends_the_exchange():
    """Issue 13 (e): grants' manual cancellation emits commitment.released; the exchange no
    longer shows grant_committed. After a withdrawal it changes nothing (already final)."""
    committed = [entry("application.submitted", 0, **SUBMITTED), entry("application.approved", 1),
                 entry("host.accepted", 2, host_id="h"), entry("grant.committed", 3, total_cents=100, travel_cents=40,
                                                               subsistence_cents=60)]
    _, status = fold([*committed, entry("commitment.released", 4, released_cents=100, reason="cancelled: fraud")])
    assert status is Status.CANCELLED
    _, status = fold([*committed, entry("application.withdrawn", 4),
                      entry("commitment.released", 5, released_cents=100, reason="application withdrawn")])
    assert status is Status.WITHDRAWN


def test_an_unknown_event_lands_in_the_timeline_with_a_readable_summary():
    timeline, status = fold([entry("application.submitted", 0, **SUBMITTED), entry("visit.photographed", 1)])
    assert status is Status.SUBMITTED and timeline[-1]["summary"] == "Visit photographed"


def test_the_timeline_says_who_acted():
    timeline, _ = fold([entry("application.submitted", 0, **{**SUBMITTED, "visitor": {**SUBMITTED["visitor"],
                                                                                     "organisation_id": "org-v"}}),
                        entry("host.declined", 1, host_id="org-h", reason="no lab free"),
                        entry("application.withdrawn", 2, withdrawn_by="vera"),
                        entry("application.approved", 3)])
    assert [e["actor"] for e in timeline] == ["org-v", "org-h", "vera", "test"]


def test_event_name_of_a_cloudevents_type():
    assert domain.event_name("eu.clusterxchange.grant_agreement.accepted.v2") == "grant_agreement.accepted"

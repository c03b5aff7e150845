"""Preparation, the exchange itself, the report and its review (pure, no I/O)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from cx_shared.errors import Conflict, Invalid
from applications import documents, domain, followup
from applications.domain import Status, fold, report_state

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SUBMITTED = {"visitor": {"legal_name": "V", "country": "FR", "organisation_id": "org-v"},
             "host": {"legal_name": "H", "country": "DE"}, "planned_start": "2027-03-22",
             "planned_end": "2027-03-26", "working_days": 4}


def entry(name: str, hours: int, **data):
    return domain.timeline_entry(event_id=f"{name}-{hours}", ce_type=f"eu.clusterxchange.{name}.v1", source="/t",
                                 at=T0 + timedelta(hours=hours), data=data)


SIGNED = [entry("application.submitted", 0, **SUBMITTED), entry("application.approved", 1),
          entry("host.accepted", 2), entry("grant.committed", 3, total_cents=100, travel_cents=50,
                                                                 subsistence_cents=50),
          entry("grant_agreement.accepted", 4)]


def test_a_no_show_cancels_a_signed_exchange():
    _, status = fold([*SIGNED, entry("exchange.no_show", 5, reported_by="hans", reason="never came")])
    assert status is Status.CANCELLED


def test_changes_requested_send_the_report_back_and_a_resubmission_reports_again():
    done = [*SIGNED, entry("exchange.started", 5), entry("exchange.completed", 6), entry("report.submitted", 7)]
    timeline, status = fold([*done, entry("report.changes_requested", 8, reasons=["say more"])])
    assert status is Status.COMPLETED and report_state(timeline)["report_state"] == "changes_requested"
    timeline, status = fold([*done, entry("report.changes_requested", 8, reasons=["x"]), entry("report.submitted", 9)])
    assert status is Status.REPORTED and report_state(timeline)["report_state"] == "submitted"


def test_the_report_state_follows_the_timeline_and_overdue_blocks_the_balance_until_acceptance():
    done = [*SIGNED, entry("exchange.started", 5), entry("exchange.completed", 6)]
    assert report_state(fold(SIGNED)[0]) == {"report_state": "none", "report_overdue": False,
                                            "balance_blocked": False}
    assert report_state(fold(done)[0])["report_state"] == "due"
    late = [*done, entry("report.overdue", 100)]
    assert report_state(fold(late)[0]) == {"report_state": "due", "report_overdue": True, "balance_blocked": True}
    late += [entry("report.submitted", 101, late=True)]
    assert report_state(fold(late)[0])["balance_blocked"] is True  # submitted is not accepted
    accepted, status = fold([*late, entry("report.accepted", 102)])
    assert report_state(accepted) == {"report_state": "accepted", "report_overdue": True, "balance_blocked": False}
    assert status is Status.REPORTED  # acceptance changes the report, not the status
    # an overdue notice that crossed a report in time changes nothing
    crossed = [*done, entry("report.submitted", 7), entry("report.overdue", 8)]
    assert report_state(fold(crossed)[0])["report_overdue"] is False


def test_summaries_say_what_happened():
    assert "ready" in domain.summarise("preparation.updated", followup.checklist(
        {"travel_booked": True, "insurance": True, "agenda_agreed": True}))
    assert "balance is blocked" in domain.summarise("report.overdue", {"due_on": "2027-04-01"})
    text = domain.summarise("report.accepted", {"accepted_by": "pm", "actual_working_days": 3,
                                                "planned_working_days": 4, "actual_start": "2027-03-22",
                                                "actual_end": "2027-03-24"})
    assert "3 working days" in text and "4" in text


def test_the_checklist_is_ready_only_when_every_item_is_ticked():
    assert followup.checklist({"travel_booked": True, "insurance": True})["ready"] is False
    assert followup.checklist({"travel_booked": True, "insurance": True, "agenda_agreed": True}) == {
        "travel_booked": True, "insurance": True, "agenda_agreed": True, "ready": True}


def test_actual_working_days_are_counted_in_the_host_country():
    # 22..26 March 2027 in Germany: Good Friday (26 March) is a public holiday -> 4 of 5 weekdays
    figures = followup.actual_figures(date(2027, 3, 22), date(2027, 3, 26), "DE", 5, 30)
    assert figures["actual_working_days"] == 4 and figures["report_due_on"] == date(2027, 4, 25)
    # the same dates in France (Good Friday is not a national holiday there) -> 5
    assert followup.actual_figures(date(2027, 3, 22), date(2027, 3, 26), "FR", 5, 10)["actual_working_days"] == 5


@pytest.mark.parametrize(("start", "end", "rule"), [(date(2027, 3, 22), date(2027, 3, 21), "end_after_start"),
                                                    (date(2027, 3, 22), date(2027, 4, 22), "max_one_month")])
def test_impossible_actual_dates_are_refused(start, end, rule):
    with pytest.raises(Invalid) as refused:
        followup.actual_figures(start, end, "DE", 5, 30)
    assert refused.value.errors[0]["rule"] == rule


def test_a_report_is_overdue_after_its_due_date_once():
    due = {"report_due_on": "2027-04-25", "report_state": "due", "report_overdue": False}
    assert not followup.is_overdue(due, date(2027, 4, 25))
    assert followup.is_overdue(due, date(2027, 4, 26))
    assert followup.is_overdue({**due, "report_state": "changes_requested"}, date(2027, 4, 26))
    assert not followup.is_overdue({**due, "report_overdue": True}, date(2027, 4, 26))
    assert not followup.is_overdue({**due, "report_state": "submitted"}, date(2027, 4, 26))
    assert not followup.is_overdue({"report_state": "none"}, date(2027, 4, 26))


def test_only_a_submitted_report_can_be_reviewed():
    followup.check_reviewable({"report_state": "submitted", "status": "reported"})
    for state, status in (("accepted", "reported"), ("due", "completed"), ("changes_requested", "completed")):
        with pytest.raises(Conflict):
            followup.check_reviewable({"report_state": state, "status": status})


def test_follow_up_events_set_the_exchanges_facts():
    fields = documents.follow_up_fields("exchange.completed", {"actual_start": "2027-03-22", "actual_end": "2027-03-24",
                                                              "actual_working_days": 3, "report_due_on": "2027-04-23",
                                                              "confirmed_by": "hans"})
    assert fields == {"actual_start": "2027-03-22", "actual_end": "2027-03-24", "actual_working_days": 3,
                      "report_due_on": "2027-04-23"}
    assert documents.follow_up_fields("report.submitted", {"summary": "s", "satisfaction": 4})["report"][
        "satisfaction"] == 4
    assert documents.follow_up_fields("grant.committed", {"total_cents": 1}) == {}


def test_money_events_keep_their_figures_in_the_timeline():
    assert entry("payment.ordered", 1, amount_cents=700, kind="balance", payment_id="p")["figures"] == {
        "amount_cents": 700, "kind": "balance"}
    assert "figures" not in entry("report.accepted", 1, accepted_by="pm")

"""Preparation, the exchange itself and its report: the follow-up rules (pure, no I/O).

The host states the actual dates; the working days between them are counted in the host
country with the same rule as at submission. The report is due a call-configured number of
days after the actual end; a report still missing then is overdue and blocks the balance.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from cx_shared.duration import last_day_within_one_month
from cx_shared.errors import Conflict

from applications.rules import refuse, violation, working_days

CHECKLIST = ("travel_booked", "insurance", "agenda_agreed")
DEFAULT_REPORT_DUE_DAYS = 30
# How often a party may change what it stated (each change is a milestone on the exchange's
# document and an entry of its timeline): enough to correct, not to grow the file without end.
MAX_REVISIONS = {"preparation.updated": 20, "host_feedback.submitted": 5}


def checklist(ticked: Mapping[str, bool]) -> dict[str, bool]:
    """The checklist as ticked, and whether the visitor is ready to go."""
    items = {item: bool(ticked.get(item)) for item in CHECKLIST}
    return {**items, "ready": all(items.values())}


def check_actual_dates(actual_start: date, actual_end: date) -> None:
    """422 unless the stated end follows the start within one month (the programme's maximum)."""
    if actual_end < actual_start:
        refuse([violation("actual_end", "end_after_start",
                          f"the visitor left ({actual_end}) before arriving ({actual_start})")])
    if actual_end > last_day_within_one_month(actual_start):
        refuse([violation("actual_end", "max_one_month",
                          f"an exchange lasts at most one month: arriving {actual_start} the visitor left by "
                          f"{last_day_within_one_month(actual_start)}")])


def actual_figures(actual_start: date, actual_end: date, host_country: str, planned_working_days: int,
                   report_due_days: int) -> dict[str, Any]:
    """What the departure establishes: the actual working days and the report's due date."""
    check_actual_dates(actual_start, actual_end)
    return {"actual_start": actual_start, "actual_end": actual_end,
            "actual_working_days": working_days(actual_start, actual_end, host_country),
            "planned_working_days": planned_working_days,
            "report_due_on": actual_end + timedelta(days=report_due_days)}


def is_overdue(exchange: Mapping[str, Any], today: date) -> bool:
    """Overdue: its due date has passed, no report is waiting or accepted, and not yet escalated."""
    due = exchange.get("report_due_on")
    return (due is not None and date.fromisoformat(str(due)) < today and not exchange.get("report_overdue")
            and exchange.get("report_state") in ("due", "changes_requested"))


def check_reviewable(exchange: Mapping[str, Any]) -> None:
    """Only a submitted report waiting for review can be accepted or sent back."""
    if exchange.get("report_state") != "submitted" or exchange.get("status") != "reported":
        raise Conflict(f"there is no report waiting for review (report: {exchange.get('report_state', 'none')}, "
                       f"status: {exchange.get('status')})")


def check_host_feedback(exchange: Mapping[str, Any]) -> None:
    if exchange.get("status") not in ("completed", "reported", "closed"):
        raise Conflict(f"the host gives feedback after the exchange, not while it is {exchange.get('status')}")


def check_revisions(exchange: Mapping[str, Any], event_name: str) -> None:
    """409 once the party changed this statement MAX_REVISIONS times."""
    made = sum(1 for m in exchange.get("milestones", []) if m.get("event") == event_name)
    if made >= MAX_REVISIONS[event_name]:
        raise Conflict(f"{event_name.replace('.', ' ').replace('_', ' ')} was changed {made} times, the most "
                       "allowed: ask the partnership if it must change again")


def unchanged(stated: Mapping[str, Any] | None, asked: Mapping[str, Any]) -> bool:
    """A resubmission of what stands (a retry, a double click): it changes nothing."""
    return stated is not None and all(stated.get(k) == v for k, v in asked.items())

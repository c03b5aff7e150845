"""The exchange's lifecycle: its state machine and the timeline every event folds into.

Pure Python, no I/O: the rules live here and are unit tested in microseconds.
An exchange's status is never stored on its own: it is the fold of its timeline, so a
late or out-of-order event (topics are consumed independently) lands where it belongs
and a replay of the topics arrives at the same status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cx_shared.errors import Conflict
from cx_shared.personal_data import written_by

from applications import audience


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_ASSESSMENT = "under_assessment"
    APPROVED = "approved"
    REJECTED = "rejected"
    WAITLISTED = "waitlisted"
    HOST_CONFIRMED = "host_confirmed"
    GRANT_COMMITTED = "grant_committed"
    AGREEMENT_SIGNED = "agreement_signed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REPORTED = "reported"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"


S = Status
OFFER_WITHDRAWN = "withdrawn"  # an offer's status once its host withdrew it (no status: open)
# A call's status once closed early or cancelled (no status: as its dates say).
CALL_CLOSED, CALL_CANCELLED = "closed", "cancelled"
# What a call's cancellation cancels: the exchanges no grant was committed for yet.
NOT_YET_GRANTED = frozenset({S.SUBMITTED, S.UNDER_ASSESSMENT, S.APPROVED, S.WAITLISTED, S.HOST_CONFIRMED})
# Where an exchange may go from each status. Withdrawal is the visitor's choice until the
# exchange starts; cancellation is the programme's (or the host's) until it is completed.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.DRAFT: frozenset({S.SUBMITTED, S.WITHDRAWN}),
    S.SUBMITTED: frozenset({S.UNDER_ASSESSMENT, S.APPROVED, S.REJECTED, S.WAITLISTED, S.WITHDRAWN, S.CANCELLED}),
    S.UNDER_ASSESSMENT: frozenset({S.APPROVED, S.REJECTED, S.WAITLISTED, S.WITHDRAWN, S.CANCELLED}),
    # waitlisted: by assessment (budget/ranking) or after a refused grant, until money is released
    S.WAITLISTED: frozenset({S.APPROVED, S.REJECTED, S.GRANT_COMMITTED, S.WITHDRAWN, S.CANCELLED}),
    S.APPROVED: frozenset({S.HOST_CONFIRMED, S.WITHDRAWN, S.CANCELLED}),
    S.HOST_CONFIRMED: frozenset({S.GRANT_COMMITTED, S.WAITLISTED, S.WITHDRAWN, S.CANCELLED}),
    S.GRANT_COMMITTED: frozenset({S.AGREEMENT_SIGNED, S.WITHDRAWN, S.CANCELLED}),
    S.AGREEMENT_SIGNED: frozenset({S.IN_PROGRESS, S.WITHDRAWN, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.REPORTED}),
    # the partnership may send the report back for changes: completed again until resubmitted
    S.REPORTED: frozenset({S.CLOSED, S.COMPLETED}),
    S.REJECTED: frozenset({S.UNDER_ASSESSMENT, S.CLOSED}),  # back under assessment only on appeal
    S.CLOSED: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.CANCELLED: frozenset(),
}

# Exchanges that hold a place: they count against the host's capacity and the visitor's calendar.
ACTIVE = frozenset({S.SUBMITTED, S.UNDER_ASSESSMENT, S.APPROVED, S.WAITLISTED, S.HOST_CONFIRMED,
                    S.GRANT_COMMITTED, S.AGREEMENT_SIGNED, S.IN_PROGRESS})

# The status each lifecycle event (by contract name) moves the exchange to. Events of later
# stages (agreements, reports) are listed by the names their producers are expected to use;
# any other event that names an application still lands in the timeline.
STATUS_AFTER: dict[str, Status] = {
    "application.submitted": S.SUBMITTED,
    "eligibility.checked": S.UNDER_ASSESSMENT,
    "application.queued": S.UNDER_ASSESSMENT,
    "appeal.lodged": S.UNDER_ASSESSMENT,
    "application.approved": S.APPROVED,
    "application.rejected": S.REJECTED,
    "application.waitlisted": S.WAITLISTED,
    "host.accepted": S.HOST_CONFIRMED,
    "host.declined": S.CANCELLED,
    "grant.committed": S.GRANT_COMMITTED,
    "grant.refused": S.WAITLISTED,
    "application.withdrawn": S.WITHDRAWN,
    "application.cancelled": S.CANCELLED,
    "grant_agreement.accepted": S.AGREEMENT_SIGNED,
    "agreement.signed": S.AGREEMENT_SIGNED,
    "exchange.started": S.IN_PROGRESS,
    "exchange.completed": S.COMPLETED,
    "report.submitted": S.REPORTED,
    "exchange.reported": S.REPORTED,
    "exchange.closed": S.CLOSED,
    "application.closed": S.CLOSED,
    "exchange.no_show": S.CANCELLED,
    # grants released the whole commitment (a grant officer's cancellation, or after a
    # withdrawal, decline or no-show that already ended the exchange): the exchange is over
    "commitment.released": S.CANCELLED,
    "report.changes_requested": S.COMPLETED,
}
# report.accepted and report.overdue change the report's state (and the balance), not the status.


def can(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def transition(current: Status | str, target: Status | str) -> Status:
    """The new status, or Conflict (409) with the reason when the programme does not allow it."""
    current, target = Status(current), Status(target)
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        raise Conflict(f"an exchange that is {current} cannot become {target} (allowed from {current}: {allowed})")
    return target


# --- the timeline -------------------------------------------------------------------------

def event_name(ce_type: str) -> str:
    """'eu.clusterxchange.grant.committed.v1' -> 'grant.committed'."""
    name = ce_type.removeprefix("eu.clusterxchange.")
    head, _, version = name.rpartition(".")
    return head if version.startswith("v") and version[1:].isdigit() else name


# Figures an entry keeps from its event, for the indicators (money and the payment's kind).
FIGURES = ("total_cents", "released_cents", "amount_cents", "kind")


def timeline_entry(*, event_id: str, ce_type: str, source: str, at: datetime, data: Mapping[str, Any]) -> dict:
    """One entry of an exchange's timeline: when, what, who (source) and why (summary)."""
    name = event_name(ce_type)
    entry = {"event_id": event_id, "at": instant(at), "event_type": ce_type, "event": name, "source": source,
             "actor": actor(name, data, source), "summary": summarise(name, data)}
    if audience.of(name).staff_acts:  # the parties read it without the names of staff
        entry[audience.PARTY_SUMMARY] = summarise(name, {**data, **{f: audience.STAFF_LABEL for f in ACTOR_FIELDS
                                                                     if data.get(f)}})
    if author := written_by(data):  # its summary quotes the organisation's texts: an erasure erases it
        entry["organisation_id"] = author
    figures = {k: data[k] for k in FIGURES if data.get(k) is not None}
    if figures and name.split(".")[0] in ("grant", "commitment", "payment"):
        entry["figures"] = figures
    return entry


# Fields in which contracts name the person or organisation that acted, most specific first.
ACTOR_FIELDS = ("withdrawn_by", "cancelled_by", "confirmed_by", "submitted_by", "accepted_by", "closed_by",
                "overridden_by", "assessor", "changed_by", "updated_by", "reported_by", "requested_by")


def actor(name: str, data: Mapping[str, Any], source: str) -> str:
    """Who did it: a person or organisation the event names, else the service that decided."""
    for field in ACTOR_FIELDS:
        if data.get(field):
            return str(data[field])
    if name == "application.submitted" and data.get("visitor", {}).get("organisation_id"):
        return data["visitor"]["organisation_id"]
    if name.startswith("host.") and data.get("host_id"):
        return str(data["host_id"])
    return source.rsplit("/", 1)[-1]


def fold(entries: Iterable[Mapping[str, Any]]) -> tuple[list[dict], Status]:
    """The timeline in time order, deduplicated by event id, each entry with the status it
    left the exchange in; and the exchange's status. An event the state machine does not
    allow at that point stays in the timeline and changes nothing."""
    unique = {e["event_id"]: dict(e) for e in entries}
    # Nothing happens to an application before it is submitted, whatever another service's clock says.
    ordered = sorted(unique.values(), key=lambda e: (e["event"] != "application.submitted", e["at"], e["event_id"]))
    status = S.DRAFT
    for entry in ordered:
        target = STATUS_AFTER.get(entry["event"])
        if target is not None and can(status, target):
            status = target
        entry["status"] = str(status)
    return ordered, status


def shapes_exchange(entry: Mapping[str, Any]) -> bool:
    """Whether an entry changes the exchange itself (its status, its report's state, the money
    the indicators count). Only these are kept on the exchange's document, as its milestones,
    so the document stays bounded; every entry, these too, is a document of its own in the
    timeline (an email sent is a note there and nothing more)."""
    name = entry["event"]
    return name in STATUS_AFTER or name in REPORT_STATE_AFTER or name == "report.overdue" or "figures" in entry


# --- the report's state and the balance -------------------------------------------------------

REPORT_STATE_AFTER = {"exchange.completed": "due", "report.submitted": "submitted",
                      "report.changes_requested": "changes_requested", "report.accepted": "accepted"}


def report_state(timeline: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Where the visitor's report stands (none, due, submitted, changes_requested, accepted),
    whether it went overdue, and whether the balance is blocked: overdue and not accepted since.
    A late report can still be accepted: that unblocks the balance."""
    state, overdue = "none", False
    for entry in timeline:  # in time order (the fold's)
        name = entry["event"]
        if name == "report.overdue" and state in ("due", "changes_requested"):
            overdue = True
        elif name in REPORT_STATE_AFTER and (name != "exchange.completed" or state == "none"):
            state = REPORT_STATE_AFTER[name]
    return {"report_state": state, "report_overdue": overdue,
            "balance_blocked": overdue and state != "accepted"}


def instant(at: datetime) -> str:
    """UTC ISO 8601 to the microsecond: it sorts as text, and keeps the order of events that
    follow each other within a millisecond (a BSON date would not)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def euros(cents: int) -> str:
    return f"EUR {cents // 100:,}.{cents % 100:02d}"


def _reasons(data: Mapping[str, Any]) -> str:
    reasons = data.get("reasons") or []
    return f": {'; '.join(reasons)}" if reasons else ""


def summarise(name: str, d: Mapping[str, Any]) -> str:
    """Who did what and why, in one line a visitor or an officer can read."""
    match name:
        case "application.submitted":
            return (f"{d['visitor']['legal_name']} ({d['visitor']['country']}) applied to visit "
                    f"{d['host']['legal_name']} ({d['host']['country']}) from {d['planned_start']} to "
                    f"{d['planned_end']}, {d['working_days']} working days, {d.get('travel_mode', 'standard')} travel")
        case "eligibility.checked":
            failed = [o["reason"] for o in d.get("outcomes", []) if not o.get("passed")]
            verdict = "eligible" if d.get("eligible") else "not eligible: " + "; ".join(failed)
            return f"Eligibility checked ({d.get('rule_set_version', '?')}): {verdict}"
        case "application.approved":
            return "Approved by the partnership" + _reasons(d)
        case "application.rejected":
            return "Rejected" + _reasons(d)
        case "application.waitlisted":
            return "Waitlisted" + _reasons(d)
        case "host.accepted":
            return f"Host {d.get('host_id', '')} accepted the visitor"
        case "host.declined":
            return f"Host {d.get('host_id', '')} declined: {d.get('reason', '')}"
        case "grant.committed":
            return (f"Lump sum of {euros(d['total_cents'])} committed (travel {euros(d['travel_cents'])}, "
                    f"subsistence {euros(d['subsistence_cents'])}; rules {d.get('rule_set_version', '?')})")
        case "grant.refused":
            return (f"Grant refused: {d.get('reason', '')} (needed {euros(d.get('required_cents', 0))}, "
                    f"available {euros(d.get('available_cents', 0))})")
        case "commitment.released":
            return f"Commitment of {euros(d.get('released_cents', 0))} released: {d.get('reason', '')}"
        case "commitment.reduced":
            return (f"Commitment reduced by {euros(d.get('released_cents', 0))} to "
                    f"{euros(d.get('total_after_cents', 0))}: {d.get('reason', '')}")
        case "application.queued":
            return "Eligible; queued for assessment by the partnership's panel"
        case "assessment.claimed":
            return f"Assessor {d.get('assessor', '')} took the assessment" + (" (appeal)" if d.get("appeal") else "")
        case "conflict.declared":
            return f"Assessor {d.get('assessor', '')} declared a conflict of interest: {d.get('reason', '')}"
        case "application.scored":
            return f"Scored {d.get('score')} by {d.get('assessor', '')}" + (
                f"; final score {d['final_score']}" if d.get("final_score") is not None else "")
        case "appeal.lodged":
            return f"Appeal lodged: {d.get('reason', '')}"
        case "grant_agreement.issued":
            return (f"Grant agreement issued for {euros(d.get('total_cents', 0))} "
                    f"(pre-financing {euros(d.get('prefinancing_cents', 0))})")
        case "grant_agreement.accepted":
            return f"Grant agreement signed by {d.get('accepted_by', '')}"
        case "payment.ordered" | "payment.settled" | "payment.confirmed":
            verb = {"payment.ordered": "ordered", "payment.settled": "settled", "payment.confirmed": "confirmed"}[name]
            kind = f"{d['kind']} " if d.get("kind") else ""
            return f"Payment ({kind.strip() or 'payment'}) of {euros(d.get('amount_cents', 0))} {verb}"
        case "exchange.started":
            on = f" on {d['actual_start']}" if d.get("actual_start") else ""
            return f"The visitor arrived{on} (confirmed by {d.get('confirmed_by', '')})"
        case "exchange.completed":
            if d.get("actual_end"):
                return (f"The visit ended on {d['actual_end']} (confirmed by {d.get('confirmed_by', '')}): "
                        f"{d.get('actual_working_days')} working days of {d.get('planned_working_days')} planned; "
                        f"report due by {d.get('report_due_on')}")
            return f"The visit ended (confirmed by {d.get('confirmed_by', '')})"
        case "report.submitted":
            late = " (late)" if d.get("late") else ""
            return f"Report submitted{late} by {d.get('submitted_by', '')}: {d.get('summary', '')}"
        case "preparation.updated":
            done = [label for key, label in (("travel_booked", "travel booked"), ("insurance", "insurance"),
                                             ("agenda_agreed", "agenda agreed with the host")) if d.get(key)]
            return "Preparation: " + (", ".join(done) if done else "nothing ticked yet") + (
                " (ready)" if d.get("ready") else "")
        case "exchange.no_show":
            return f"The visitor never came (reported by {d.get('reported_by', '')})" + (
                f": {d['reason']}" if d.get("reason") else "")
        case "host_feedback.submitted":
            return f"Host feedback: satisfaction {d.get('satisfaction')}/5" + (
                f", {d['free_text']}" if d.get("free_text") else "")
        case "report.accepted":
            return (f"Report accepted by {d.get('accepted_by', '')}: {d.get('actual_working_days')} working days "
                    f"({d.get('actual_start')} to {d.get('actual_end')}) of {d.get('planned_working_days')} "
                    "planned; the balance can be paid")
        case "report.changes_requested":
            return f"Changes to the report requested by {d.get('requested_by', '')}" + _reasons(d)
        case "report.overdue":
            return (f"Report overdue (due {d.get('due_on')}): escalated to the partnership; "
                    "the balance is blocked until a report is accepted")
        case "exchange.closed":
            return f"Closed by {d.get('closed_by', '')}" + (f": {d['reason']}" if d.get("reason") else "")
        case "application.withdrawn":
            return "Withdrawn by the visitor" + (f": {d['reason']}" if d.get("reason") else "")
        case "application.cancelled":
            return f"Cancelled: {d.get('reason', '')}"
        case "email.sent" | "email.failed":
            outcome = "sent" if name == "email.sent" else f"failed ({d.get('error', '')})"
            return (f"Email '{d.get('template', '')}' to the {d.get('recipient_role', '')} "
                    f"({d.get('language', '')}) {outcome}")
        case _:
            return name.replace(".", " ").capitalize()


# --- membership: the partnerships an organisation belongs to ----------------------------------

class Membership(StrEnum):
    """Where an organisation stands in a partnership. It joins by its own act (joined); a later
    change may have it ask and the partnership validate (requested, then validated)."""

    JOINED = "joined"


# The states that make an organisation a member: its partnership's staff have rights over it.
MEMBER = frozenset({Membership.JOINED})
MAX_MEMBERSHIPS = 50  # partnerships one organisation may belong to at once

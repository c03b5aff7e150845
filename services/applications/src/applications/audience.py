"""Who sees what of an exchange (pure): one table of the timeline's entry types.

Staff of the exchange's partnership see everything. The visitor and the host see the
entries meant for them; where staff acted (an assessor, an officer, a manager) they see
that the partnership did, never who: assessors' identities, scores and conflicts of
interest, the budget's figures and the mail log stay with the partnership.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cx_shared.personal_data import without_others


class Viewer(StrEnum):
    VISITOR = "visitor"
    HOST = "host"
    STAFF = "staff"  # of the exchange's partnership (or programme-wide)


@dataclass(frozen=True)
class Audience:
    """Who, besides staff, sees an entry; and whether the one who acted is staff."""

    parties: frozenset[Viewer]
    staff_acts: bool = False


V, H = Viewer.VISITOR, Viewer.HOST
EVERYONE = Audience(frozenset({V, H}))
VISITOR = Audience(frozenset({V}))
HOST = Audience(frozenset({H}))
STAFF_ONLY = Audience(frozenset())
BY_STAFF = Audience(frozenset({V, H}), staff_acts=True)
STAFF_LABEL = "the partnership"  # what the parties read where a member of staff acted
PARTY_SUMMARY = "party_summary"  # an entry's summary without staff names, kept beside the full one

AUDIENCE: dict[str, Audience] = {
    "application.submitted": EVERYONE,
    "eligibility.checked": EVERYONE,
    "application.queued": EVERYONE,
    "assessment.claimed": STAFF_ONLY,  # an assessor's identity
    "conflict.declared": STAFF_ONLY,  # an assessor's identity and reasons
    "application.scored": STAFF_ONLY,  # scores and assessors
    "appeal.lodged": VISITOR,
    "application.approved": BY_STAFF,
    "application.rejected": BY_STAFF,
    "application.waitlisted": BY_STAFF,
    "host.accepted": EVERYONE,
    "host.declined": EVERYONE,
    "grant.committed": VISITOR,  # the visitor's money
    "grant.refused": STAFF_ONLY,  # the partnership's budget figures
    "action.initiated": STAFF_ONLY,  # four eyes on money: officers' names and the action's steps
    "action.verified": STAFF_ONLY,
    "action.rejected": STAFF_ONLY,
    "commitment.released": VISITOR,
    "commitment.reduced": VISITOR,
    "grant_agreement.issued": VISITOR,
    "grant_agreement.accepted": VISITOR,
    "payment.ordered": VISITOR,
    "payment.settled": VISITOR,
    "payment.confirmed": VISITOR,
    "application.withdrawn": EVERYONE,
    "application.cancelled": BY_STAFF,
    "preparation.updated": VISITOR,
    "exchange.started": EVERYONE,
    "exchange.completed": EVERYONE,
    "exchange.no_show": EVERYONE,
    "report.submitted": VISITOR,
    "report.overdue": VISITOR,
    "report.changes_requested": Audience(frozenset({V}), staff_acts=True),
    "report.accepted": Audience(frozenset({V}), staff_acts=True),
    "host_feedback.submitted": HOST,
    "exchange.closed": BY_STAFF,
    "email.sent": STAFF_ONLY,  # the mail log
    "email.failed": STAFF_ONLY,
}


def of(event_name: str) -> Audience:
    """An entry type not in the table (a new contract) is for staff until someone decides."""
    return AUDIENCE.get(event_name, STAFF_ONLY)


def shown_to(viewers: Collection[Viewer]) -> list[str] | None:
    """The entry types these viewers read (None: every one, staff)."""
    if Viewer.STAFF in viewers:
        return None
    return sorted(name for name, a in AUDIENCE.items() if a.parties.intersection(viewers))


def timeline_for(entries: Iterable[Mapping[str, Any]], viewers: Collection[Viewer]) -> list[dict]:
    """The timeline as these viewers may read it."""
    if Viewer.STAFF in viewers:
        return [{k: v for k, v in e.items() if k != PARTY_SUMMARY} for e in entries]
    return [for_parties(e) for e in entries if of(e["event"]).parties.intersection(viewers)]


def for_parties(entry: Mapping[str, Any]) -> dict:
    """An entry without the identity of the staff who acted (an entry stored before its
    party summary was, says only what happened)."""
    shown = {k: v for k, v in entry.items() if k != PARTY_SUMMARY}
    if of(entry["event"]).staff_acts:
        shown["actor"] = STAFF_LABEL
        shown["summary"] = entry.get(PARTY_SUMMARY) or entry["event"].replace(".", " ").capitalize()
    return shown


def exchange_for(doc: Mapping[str, Any], viewers: Collection[Viewer]) -> dict:
    """An exchange's own fields as these viewers may read them: the report is the visitor's,
    the host's feedback the host's, and a review names the partnership, not its reviewer."""
    shown = dict(doc)
    if Viewer.STAFF in viewers:
        return shown
    if Viewer.VISITOR not in viewers:
        shown.pop("report", None)
        shown.pop("report_review", None)
        shown.pop("preparation", None)
    if Viewer.HOST not in viewers:
        shown.pop("host_feedback", None)
    if shown.get("report_review"):
        shown["report_review"] = {**shown["report_review"], "by": STAFF_LABEL}
    return shown


def export_for(subject_id: str, found: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The subject's part of an export (GDPR art. 15), from the documents that hold its data: its
    organisation, and each of its exchanges and timeline entries as the subject reads them (the same
    rules as every read: no staff-only entry, no staff name, not the other party's report or
    feedback), without another organisation's contact person."""
    found = list(found)
    parties = {d["document"]["_id"]: as_party(subject_id, d["document"]) for d in found
               if d["collection"] == "applications"}
    shown = []
    for item in found:
        doc = item["document"]
        if item["collection"] == "applications":
            doc = {**exchange_for(doc, parties[doc["_id"]]),
                   "milestones": timeline_for(doc.get("milestones", []), parties[doc["_id"]])}
        elif item["collection"] == "timeline":
            viewers = parties.get(doc.get("application_id"), set())
            if not of(doc["event"]).parties.intersection(viewers):
                continue
            doc = for_parties(doc)
        shown.append({"collection": item["collection"], "document": without_others(doc, subject_id)})
    return shown


def as_party(organisation_id: str, exchange: Mapping[str, Any]) -> set[Viewer]:
    return ({V} if exchange.get("visitor_id") == organisation_id else set()) | (
        {H} if exchange.get("host_id") == organisation_id else set())

"""Facts of the domain to the integration events of cx.assessment.v1 (one table)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cx_shared.events import Event
from cx_shared.events.assessment import (REASON_MAX, REASONS_MAX, AppealLodged, ApplicationApproved,
                                         ApplicationQueued, ApplicationRejected, ApplicationScored,
                                         ApplicationWaitlisted, AssessmentClaimed, ConflictDeclared,
                                         EligibilityChecked, HostAccepted, HostDeclined, RuleSetChanged)

from assessment import facts

EVENT_OF: dict[type, type[Event]] = {
    facts.Checked: EligibilityChecked,
    facts.Approved: ApplicationApproved,
    facts.Waitlisted: ApplicationWaitlisted,
    facts.Rejected: ApplicationRejected,
    facts.Queued: ApplicationQueued,
    facts.Claimed: AssessmentClaimed,
    facts.ConflictNoted: ConflictDeclared,
    facts.Scored: ApplicationScored,
    facts.Appealed: AppealLodged,
    facts.HostAcceptance: HostAccepted,
    facts.HostRefusal: HostDeclined,
    facts.RuleSetPublished: RuleSetChanged,
}


def event_of(call_id: str, fact: Any) -> Event:
    data = asdict(fact)
    if "reasons" in data:  # a decision's reasons may quote others' text (a host's, a manager's, grants')
        data["reasons"] = [clip(r) for r in data["reasons"][:REASONS_MAX]]
    return EVENT_OF[type(fact)](call_id=call_id, **data)


def clip(text: str) -> str:
    return text if len(text) <= REASON_MAX else text[:REASON_MAX - 1] + "…"


def subject_of(call_id: str, fact: Any) -> str:
    """Events about an application are keyed by it (one exchange stays ordered); rule-set
    changes by the call."""
    return getattr(fact, "application_id", None) or call_id

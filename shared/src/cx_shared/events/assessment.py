"""Contracts published by the assessment service on cx.assessment.v1."""

from __future__ import annotations

from pydantic import Field

from cx_shared.events import Event
from cx_shared.events.common import RuleOutcome
from cx_shared.topics import ASSESSMENT


class EligibilityChecked(Event, name="eligibility.checked", topic=ASSESSMENT):
    application_id: str
    call_id: str
    eligible: bool
    rule_set_version: str
    outcomes: list[RuleOutcome]


class ApplicationApproved(Event, name="application.approved", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: list[str] = Field(default_factory=list)
    # Optional context (added later; absent on older events):
    score: float | None = None
    estimated_cents: int | None = None
    overridden_by: str | None = None
    justification: str | None = None


class ApplicationRejected(Event, name="application.rejected", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: list[str]
    score: float | None = None
    overridden_by: str | None = None
    justification: str | None = None


class ApplicationWaitlisted(Event, name="application.waitlisted", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: list[str] = Field(default_factory=list)
    score: float | None = None
    overridden_by: str | None = None
    justification: str | None = None


class HostAccepted(Event, name="host.accepted", topic=ASSESSMENT):
    """The host accepted an approved application: from here on it is an exchange."""

    application_id: str
    call_id: str
    host_id: str


class HostDeclined(Event, name="host.declined", topic=ASSESSMENT):
    application_id: str
    call_id: str
    host_id: str
    reason: str


class RuleSetChanged(Event, name="rule_set.changed", topic=ASSESSMENT):
    """A programme manager published a new version of a call's rule set; earlier
    decisions keep the version they were taken under."""

    call_id: str
    rule_set_version: str
    rules: list[dict] = Field(default_factory=list)
    changed_by: str = ""


class ApplicationQueued(Event, name="application.queued", topic=ASSESSMENT):
    """An eligible application entered its partnership's assessment queue (panel mode)."""

    application_id: str
    call_id: str
    partnership_id: str
    assessors_required: int = 1


class AssessmentClaimed(Event, name="assessment.claimed", topic=ASSESSMENT):
    application_id: str
    call_id: str
    assessor: str
    appeal: bool = False


class ConflictDeclared(Event, name="conflict.declared", topic=ASSESSMENT):
    application_id: str
    call_id: str
    assessor: str
    reason: str


class ApplicationScored(Event, name="application.scored", topic=ASSESSMENT):
    application_id: str
    call_id: str
    assessor: str
    score: float = Field(description="weighted score of this assessor, 0..100")
    criteria: dict[str, int] = Field(default_factory=dict)
    comment: str = ""
    appeal: bool = False
    final_score: float | None = Field(None, description="set when the assessment is complete")


class AppealLodged(Event, name="appeal.lodged", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reason: str

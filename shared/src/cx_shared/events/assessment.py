"""Contracts published by the assessment service on cx.assessment.v1."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from cx_shared.events import Event
from cx_shared.events.common import ErasureReport, ExportPart
from cx_shared.events.common import RuleOutcome
from cx_shared.topics import ASSESSMENT

# Free text and lists are bounded, so no event comes near the broker's message limit. A reason
# may quote a person's text (bounded tighter by the API) or another service's (a grants reason):
# assessment clips what it composes to REASON_MAX.
REASON_MAX, REASONS_MAX, RULES_MAX, CRITERIA_MAX = 4000, 50, 32, 20
Reason = Annotated[str, Field(max_length=REASON_MAX)]
Reasons = Annotated[list[Reason], Field(max_length=REASONS_MAX)]


class EligibilityChecked(Event, name="eligibility.checked", topic=ASSESSMENT):
    application_id: str
    call_id: str
    eligible: bool
    rule_set_version: str
    outcomes: list[RuleOutcome] = Field(max_length=RULES_MAX)


class ApplicationApproved(Event, name="application.approved", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: Reasons = Field(default_factory=list)
    # Optional context (added later; absent on older events):
    score: float | None = None
    estimated_cents: int | None = None
    overridden_by: str | None = None
    justification: Reason | None = None


class ApplicationRejected(Event, name="application.rejected", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: Reasons
    score: float | None = None
    overridden_by: str | None = None
    justification: Reason | None = None


class ApplicationWaitlisted(Event, name="application.waitlisted", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: Reasons = Field(default_factory=list)
    score: float | None = None
    overridden_by: str | None = None
    justification: Reason | None = None


class HostAccepted(Event, name="host.accepted", topic=ASSESSMENT):
    """The host accepted an approved application: from here on it is an exchange."""

    application_id: str
    call_id: str
    host_id: str


class HostDeclined(Event, name="host.declined", topic=ASSESSMENT):
    application_id: str
    call_id: str
    host_id: str
    reason: Reason


class RuleSetChanged(Event, name="rule_set.changed", topic=ASSESSMENT):
    """A programme manager published a new version of a call's rule set; earlier
    decisions keep the version they were taken under."""

    call_id: str
    rule_set_version: str
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=RULES_MAX)
    changed_by: str = ""
    # The version's panel settings (added later; absent on older events, which left them unchanged):
    criteria: dict[str, int] | None = Field(None, max_length=CRITERIA_MAX, description="criterion -> weight")
    second_assessor: bool | None = None
    score_gap: float | None = None
    threshold: float | None = None


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
    reason: Reason


class ApplicationScored(Event, name="application.scored", topic=ASSESSMENT):
    application_id: str
    call_id: str
    assessor: str
    score: float = Field(description="weighted score of this assessor, 0..100")
    criteria: dict[str, int] = Field(default_factory=dict, max_length=CRITERIA_MAX)
    comment: Reason = ""
    appeal: bool = False
    final_score: float | None = Field(None, description="set when the assessment is complete")


class AppealLodged(Event, name="appeal.lodged", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reason: Reason


class AssessmentErasureReported(ErasureReport, name="personal_data.erasure_reported.assessment", topic=ASSESSMENT):
    """What assessment erased of the subject (stored submissions)."""


class AssessmentExported(ExportPart, name="personal_data.exported.assessment", topic=ASSESSMENT):
    """What assessment holds of the subject."""

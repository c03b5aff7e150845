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


class ApplicationRejected(Event, name="application.rejected", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: list[str]


class ApplicationWaitlisted(Event, name="application.waitlisted", topic=ASSESSMENT):
    application_id: str
    call_id: str
    reasons: list[str] = Field(default_factory=list)


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

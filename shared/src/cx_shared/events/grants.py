"""Contracts published by the grants service on cx.grants.v1."""

from __future__ import annotations

from pydantic import Field

from cx_shared.events import Event
from cx_shared.topics import GRANTS


class GrantCommitted(Event, name="grant.committed", topic=GRANTS):
    application_id: str
    call_id: str
    travel_cents: int = Field(ge=0)
    subsistence_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0)
    rule_set_version: str
    available_after_cents: int = Field(ge=0)


class GrantRefused(Event, name="grant.refused", topic=GRANTS):
    application_id: str
    call_id: str
    reason: str
    required_cents: int = 0
    available_cents: int = 0


class CommitmentReleased(Event, name="commitment.released", topic=GRANTS):
    application_id: str
    call_id: str
    released_cents: int = Field(ge=0)
    reason: str

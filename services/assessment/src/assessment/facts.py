"""The facts the assessment of a call produces (one integration event each, see contracts.py).

Plain frozen dataclasses: the domain returns them, contracts.py maps them to events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Checked:
    application_id: str
    eligible: bool
    rule_set_version: str
    outcomes: list[dict[str, Any]]


@dataclass(frozen=True)
class Decision:
    """What every decision on an application says: why, its score, and who overrode the rules."""

    application_id: str
    reasons: list[str]
    score: float | None = None
    overridden_by: str | None = None
    justification: str | None = None


@dataclass(frozen=True)
class Approved(Decision):
    estimated_cents: int | None = None


@dataclass(frozen=True)
class Waitlisted(Decision):
    pass


@dataclass(frozen=True)
class Rejected(Decision):
    pass


@dataclass(frozen=True)
class Queued:
    application_id: str
    partnership_id: str
    assessors_required: int


@dataclass(frozen=True)
class Claimed:
    application_id: str
    assessor: str
    appeal: bool


@dataclass(frozen=True)
class ConflictNoted:
    application_id: str
    assessor: str
    reason: str


@dataclass(frozen=True)
class Scored:
    application_id: str
    assessor: str
    score: float
    criteria: dict[str, int]
    comment: str
    appeal: bool
    final_score: float | None


@dataclass(frozen=True)
class Appealed:
    application_id: str
    reason: str


@dataclass(frozen=True)
class HostAcceptance:
    application_id: str
    host_id: str


@dataclass(frozen=True)
class HostRefusal:
    application_id: str
    host_id: str
    reason: str


@dataclass(frozen=True)
class RuleSetPublished:
    rule_set_version: str
    rules: list[dict[str, Any]]
    changed_by: str
    # the panel settings of the version, so the event alone says what it is (a rebuild makes it again)
    criteria: dict[str, int] | None = None
    second_assessor: bool | None = None
    score_gap: float | None = None
    threshold: float | None = None

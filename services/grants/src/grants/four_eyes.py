"""Four eyes on money (issue 23): initiating and verifying are two people. Pure Python, no I/O.

The EU's financial rules separate the agent who initiates a payment from the one who verifies
it. Here a *balance payment*, a *top-up* and a *cancellation by hand* are actions that one
officer (or, for a balance, the partnership's review of the report) initiates and another
officer of the same partnership verifies; only the verification moves money.

Rules:
- the initiator can never verify his own action (nor can anyone whose organisation is a party
  to the exchange: a conflict of interest, as in assessment);
- an action waits at most ``TTL`` (7 days) for its verification; after that it is *expired*
  and changes nothing;
- one live action per kind and subject (the exchange, or the call for a top-up): a second
  initiation while one waits is refused (verify or reject it first); an expired one is
  superseded by the next initiation, which names it;
- any officer of the partnership may reject a waiting action (the initiator withdraws it so);
- a top-up adds at most ``TOP_UP_MAX_CENTS`` (EUR 100,000) at a time.
Every step is an event naming who did it (ActionInitiated, ActionVerified, ActionRejected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cx_shared.errors import Conflict, Forbidden, Invalid
from cx_shared.events.grants import ActionInitiated, ActionRejected, ActionVerified

BALANCE_PAYMENT, TOP_UP, CANCELLATION = "balance_payment", "top_up", "cancellation"
KINDS = (BALANCE_PAYMENT, TOP_UP, CANCELLATION)
PENDING, VERIFIED, REJECTED, EXPIRED = "pending", "verified", "rejected", "expired"
TTL = timedelta(days=7)
TOP_UP_MAX_CENTS = 10_000_000  # EUR 100,000 per top-up; more is several top-ups, each verified


@dataclass(frozen=True)
class Officer:
    """Who acts: the token's subject and the organisation it names (if any)."""

    subject: str
    organisation_id: str | None = None


def slot(kind: str, subject_id: str) -> str:
    """Where the one live action of a kind about a subject (an exchange, or a call) is kept."""
    return f"{kind}:{subject_id}"


def status_at(action: Mapping[str, Any], now: datetime) -> str:
    """An action's status as of `now`: a pending one past its expiry is expired."""
    if action["status"] == PENDING and now >= _time(action["expires_at"]):
        return EXPIRED
    return action["status"]


def check_top_up(amount_cents: int) -> None:
    if not 0 < amount_cents <= TOP_UP_MAX_CENTS:
        raise Invalid(f"a top-up adds between 1 cent and {TOP_UP_MAX_CENTS} cents (EUR 100,000) at a time",
                      field="amount_cents", rule=f"le={TOP_UP_MAX_CENTS}")


def check_no_conflict(officer: Officer, parties: Mapping[str, Any] | None) -> None:
    """An officer who belongs to the visitor's or the host's organisation acts on none of its money."""
    if parties and officer.organisation_id and officer.organisation_id in (
            parties.get("visitor_organisation_id"), parties.get("host_organisation_id")):
        raise Forbidden("conflict of interest: the officer belongs to the visitor's or the host's organisation",
                        field="officer", rule="conflict_of_interest")


def initiate(kind: str, *, action_id: str, call_id: str, partnership_id: str, initiator: str, at: datetime,
             current: Mapping[str, Any] | None, application_id: str | None = None, amount_cents: int | None = None,
             params: Mapping[str, Any] | None = None, reason: str = "") -> tuple[dict[str, Any], list[Any]]:
    """A new action waiting for verification, and its event. `current` is the action now kept in
    its slot: a live one refuses this initiation; an expired one is superseded."""
    if kind not in KINDS:
        raise ValueError(f"unknown action kind {kind}")
    supersedes = None
    if current is not None:
        state = status_at(current, at)
        if state == PENDING:
            raise Conflict(f"{kind} {current['action_id']} initiated by {current['initiated_by']} awaits "
                           "verification: verify or reject it first", field="action_id", rule="one_pending_action")
        supersedes = current["action_id"] if state == EXPIRED else None
    expires = at + TTL
    action = {"action_id": action_id, "kind": kind, "call_id": call_id, "partnership_id": partnership_id,
              "application_id": application_id, "amount_cents": amount_cents, "params": dict(params or {}),
              "reason": reason, "status": PENDING, "initiated_by": initiator, "initiated_at": at.isoformat(),
              "expires_at": expires.isoformat(), "supersedes": supersedes}
    event = ActionInitiated(**_about(action), initiated_by=initiator, expires_at=expires, reason=reason,
                            supersedes=supersedes)
    return action, [event]


def verify(action: Mapping[str, Any], verifier: Officer, at: datetime,
           parties: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[Any]]:
    """The second officer's verification: refused to the initiator, to a party's member, and
    for an action no longer pending."""
    _check_pending(action, at)
    if verifier.subject == action["initiated_by"]:
        raise Forbidden("four eyes: the officer who initiated this action cannot verify it; another officer "
                        "of the partnership must", field="verified_by", rule="initiator_cannot_verify")
    check_no_conflict(verifier, parties)
    done = {**action, "status": VERIFIED, "verified_by": verifier.subject, "decided_at": at.isoformat()}
    return done, [ActionVerified(**_about(action), initiated_by=action["initiated_by"], verified_by=verifier.subject)]


def reject(action: Mapping[str, Any], by: str, reason: str, at: datetime) -> tuple[dict[str, Any], list[Any]]:
    _check_pending(action, at)
    done = {**action, "status": REJECTED, "rejected_by": by, "rejection_reason": reason,
            "decided_at": at.isoformat()}
    return done, [ActionRejected(**_about(action), initiated_by=action["initiated_by"], rejected_by=by,
                                 reason=reason)]


def view(action: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What an officer sees of an action: its status as of now."""
    return {**action, "status": status_at(action, now)}


def _check_pending(action: Mapping[str, Any], at: datetime) -> None:
    state = status_at(action, at)
    if state != PENDING:
        raise Conflict(f"{action['kind']} {action['action_id']} is {state}, not awaiting verification",
                       field="action_id", rule="pending")


def _about(action: Mapping[str, Any]) -> dict[str, Any]:
    return {k: action[k] for k in ("action_id", "kind", "call_id", "partnership_id", "application_id",
                                   "amount_cents")}


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)

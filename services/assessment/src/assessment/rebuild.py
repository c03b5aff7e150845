"""`python -m assessment.rebuild [--drop]`: the call books rebuilt from the topics assessment
consumes and from its own topic (cx_shared.rebuild).

What HTTP requests decided (rule sets, claims, conflicts, scores, rounds, overrides, host
answers, appeals) comes back from our own events: the first event of a request records it (no
causation; its id is the decision's cause: cx_shared.envelope.as_request), and the request is
made again from it, through the same call-book method, the same entries read and the same
cause, so the envelope's change count and ring of causes are those of the live book. Every
other event of our own (caused by an event, or following a request's first one) is made again
by what caused it, and skipped.
"""

from __future__ import annotations

from collections.abc import Callable

from cx_shared.consumer import Delivery
from cx_shared.errors import Problem
from cx_shared.events import Event
from cx_shared.events.assessment import (AppealLodged, ApplicationApproved, ApplicationRejected, ApplicationScored,
                                         ApplicationWaitlisted, AssessmentClaimed, ConflictDeclared,
                                         HostAccepted, HostDeclined, RuleSetChanged)
from cx_shared.logging import get_logger
from cx_shared.rebuild import Replay, main

from assessment.domain import APPROVED, REJECTED, SCORED, WAITLISTED, Assessor, CallBook
from assessment.handlers import HANDLERS, caused_by
from assessment.settings import Settings
from assessment.storage import OUTBOX_COLLECTIONS, Storage
from assessment.workflow import Action, Needs, act_on_call

log = get_logger(__name__)
Request = tuple[Action, Needs]  # what the route did, and the entries it read (api.act_on_application)


def rule_set(e: RuleSetChanged) -> Request:
    panel = {k: getattr(e, k) for k in ("criteria", "second_assessor", "score_gap", "threshold")}
    return lambda b: b.change_rule_set(e.changed_by, e.rules, **panel), Needs()


def claim(e: AssessmentClaimed) -> Request:
    # The route checked who the assessor is and what he owns; the book checks the rest again.
    return lambda b: b.claim(e.application_id, Assessor(e.assessor)), Needs(e.application_id)


def conflict(e: ConflictDeclared) -> Request:
    return lambda b: b.declare_conflict(e.application_id, Assessor(e.assessor), e.reason), Needs(e.application_id)


def score(e: ApplicationScored) -> Request:
    return (lambda b: b.score(e.application_id, Assessor(e.assessor), e.criteria, e.comment),
            Needs(e.application_id))


def host_answer(accept: bool) -> Callable[[HostAccepted | HostDeclined], Request]:
    def request(e: HostAccepted | HostDeclined) -> Request:
        return (lambda b: b.host_decides(e.application_id, e.host_id, accept, getattr(e, "reason", "")),
                Needs(e.application_id, statuses=(WAITLISTED,)))
    return request


def appeal(e: AppealLodged) -> Request:
    return (lambda b: b.appeal(e.application_id, b.entry(e.application_id).visitor_id, e.reason),
            Needs(e.application_id))


def decision(status: str) -> Callable[[ApplicationApproved | ApplicationRejected | ApplicationWaitlisted], Request]:
    """A request's first decision: a manager's override (it names him), else the first of a round."""
    def request(e) -> Request:
        if e.overridden_by:
            return (lambda b: b.override(e.application_id, status, e.justification or "", Assessor(e.overridden_by)),
                    Needs(e.application_id, statuses=(WAITLISTED,)))
        return CallBook.run_round, Needs(statuses=(SCORED, WAITLISTED))
    return request


REQUESTS: dict[type[Event], Callable[..., Request]] = {
    RuleSetChanged: rule_set, AssessmentClaimed: claim, ConflictDeclared: conflict, ApplicationScored: score,
    HostAccepted: host_answer(True), HostDeclined: host_answer(False), AppealLodged: appeal,
    ApplicationApproved: decision(APPROVED), ApplicationRejected: decision(REJECTED),
    ApplicationWaitlisted: decision(WAITLISTED),
}


async def on_own_event(event: Event, delivery: Delivery, storage: Storage) -> None:
    """Make the request this event records again, once (its id is the decision's cause)."""
    if delivery.envelope.causationid is not None:
        return
    action, needs = REQUESTS[type(event)](event)
    try:
        await act_on_call(storage, event.call_id, action, caused_by(delivery), needs=needs, recorded=delivery.event_id)
    except Problem as refused:  # the book differs from the live one: say so, go on
        log.warning("a recorded request could not be made again", event_id=delivery.event_id,
                    type=delivery.envelope.type, reason=str(refused))


REPLAYED = {**HANDLERS, **{cls: on_own_event for cls in REQUESTS}}
REPLAY = Replay(Settings, REPLAYED, Storage, OUTBOX_COLLECTIONS)

if __name__ == "__main__":
    main(REPLAY)

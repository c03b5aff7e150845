"""Use cases shared by the event handlers and the HTTP API: settling an exchange (commitment
or refusal), releasing its commitment, and its agreement document.

An exchange is granted once four facts have arrived, in whatever order the topics deliver
them: the call's budget (CallPublished), the exchange's facts (ApplicationSubmitted),
assessment's approval (ApplicationApproved) and the host's acceptance (HostAccepted), all about
the same call. Each handler records its fact and then settles the exchange; the last fact to
arrive triggers the commitment or the refusal. A host acceptance alone never moves money.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.errors import Conflict, NotFound
from cx_shared.events import Event
from cx_shared.logging import get_logger

from grants import domain, four_eyes
from grants.agreement import agreement_path, render_agreement, render_from_commitment, sha256
from grants.budgeting import Wrap, act_on_exchange
from grants.domain import Cause, Parties
from cx_shared.lump_sums import Location, LumpSum, LumpSumError, compute_lump_sum, prefinancing_cents
from cx_shared.lump_sum_rules import UnknownRuleSet, rule_set
from grants.storage import REFUSED, Storage

log = get_logger(__name__)


def subject_of(event: Event) -> str:
    return getattr(event, "application_id", None) or event.call_id  # type: ignore[attr-defined]


def wrapper(source: str, correlation_id: str, causation_id: str) -> Wrap:
    """Wraps a change's events in envelopes caused by one event, keyed by exchange (or call)."""
    def wrap(change: domain.BudgetChange) -> list[Envelope]:
        return [Envelope.wrap(ev, source=source, subject=subject_of(ev), correlation_id=correlation_id,
                              causation_id=causation_id) for ev in change.events]
    return wrap


async def settle_exchange(storage: Storage, application_id: str, source: str) -> None:
    """Commit the lump sum or refuse the grant once the facts, the approval, the acceptance and
    the budget are all there; the last of them to arrive triggers it. Safe to run any number of times."""
    ex = await storage.exchange(application_id)
    facts, approved, accepted = ex["facts"], ex["approval"], ex["acceptance"]
    if not (facts and approved and accepted):
        return  # waits for the missing fact
    if len({facts["call_id"], approved["call_id"], accepted["call_id"]}) > 1:
        log.warning("the facts of an exchange name different calls: nothing committed", application_id=application_id,
                    calls=sorted({facts["call_id"], approved["call_id"], accepted["call_id"]}))
        return
    budget = await storage.view(accepted["call_id"])
    if budget is None:
        return  # waits for the budget; CallPublished settles the call's accepted exchanges
    outcome = await storage.commitment(application_id)
    if outcome is None or outcome["state"] is None or refused_before(outcome, accepted):  # undecided, stopped
        # half-way, or refused before the host's latest acceptance (assessment promoted it again)
        if ex["withdrawal"]:
            return  # withdrawn (or declined) before any grant: nothing to commit
        await decide_grant(storage, application_id, facts, accepted, budget["rule_set_version"], source)
    # Committed now or earlier (perhaps by a delivery that stopped half-way): finish the work.
    await ensure_agreement(storage, application_id)
    withdrawal = await storage.withdrawal(application_id)
    if withdrawal:  # withdrawn while we were committing: the withdrawal may have found no commitment yet
        await release(storage, accepted["call_id"], application_id, withdrawal["reason"],
                      cause_of_acceptance(accepted), wrapper(source, accepted["correlation_id"], accepted["event_id"]),
                      event_id=withdrawal["event_id"])  # the withdrawal's own id: released once by either


def refused_before(outcome: dict[str, Any], accepted: dict[str, Any]) -> bool:
    return outcome["state"] == REFUSED and outcome["record"]["cause"]["event_id"] != accepted["event_id"]


async def decide_grant(storage: Storage, application_id: str, facts: dict[str, Any], accepted: dict[str, Any],
                       rules_version: str, source: str) -> None:
    call_id, cause = accepted["call_id"], cause_of_acceptance(accepted)
    wrap = wrapper(source, accepted["correlation_id"], accepted["event_id"])
    try:
        rules = rule_set(rules_version)
        lump_sum = lump_sum_of(facts, rules)
    except (LumpSumError, UnknownRuleSet) as exc:
        reason = str(exc)
        await act_on_exchange(storage, call_id, application_id,
                              lambda b: domain.refuse(b, application_id, reason, cause), wrap, cause=cause.event_id)
        log.info("grant refused", application_id=application_id, reason=reason)
        return
    exchange = {k: facts[k] for k in ("planned_start", "planned_end", "working_days", "travel_mode")}
    document = render_agreement(application_id=application_id, call_id=call_id, parties=facts["parties"],
                                exchange=exchange, lump_sum=lump_sum.as_record(),
                                prefinancing_cents=prefinancing_cents(rules, lump_sum.total_cents),
                                rules=rules, issued_at=cause.at)
    digest = sha256(document)
    outcome = await act_on_exchange(
        storage, call_id, application_id,
        lambda b: domain.commit(b, application_id, Parties(**facts["parties"]), lump_sum, rules, cause, digest,
                                agreement_path(application_id), exchange), wrap, cause=cause.event_id)
    state, record = outcome or (None, None)
    if state == REFUSED:
        log.info("grant refused", application_id=application_id, reason=record["reason"])
    elif record is not None and record["agreement"]["sha256"] == digest:  # this very decision was stored
        log.info("grant committed", application_id=application_id, total_cents=lump_sum.total_cents)
        await storage.save_agreement(application_id, call_id, document, digest)


def cause_of_acceptance(accepted: dict[str, Any]) -> Cause:
    # the acceptance's time (one recorded before it was kept: ours), so a rebuild issues the same agreement
    return Cause(actor=accepted["source"], at=accepted.get("time") or datetime.now(UTC), event_id=accepted["event_id"],
                 event_type=accepted["event_type"])


async def release(storage: Storage, call_id: str, application_id: str, reason: str, cause: Cause, wrap: Wrap, *,
                  event_id: str, by_hand: bool = False, verified_by: str | None = None) -> bool:
    """Return the unspent commitment to the budget, once: False when there was nothing to release."""
    outcome = await act_on_exchange(storage, call_id, application_id,
                                    lambda b: domain.release(b, application_id, cause, reason, by_hand, verified_by),
                                    wrap, cause=event_id)
    return outcome is not None


async def ensure_agreement(storage: Storage, application_id: str) -> bytes | None:
    """The stored agreement PDF, rendered again from the commitment if it was never stored."""
    document = await storage.agreement_document(application_id)
    if document is not None:
        return document
    outcome = await storage.commitment(application_id)
    if outcome is None or outcome["record"] is None or outcome["state"] == REFUSED:
        return None
    budget = await storage.view(outcome["call_id"])
    document = render_from_commitment(outcome["record"], rule_set(budget["rule_set_version"]))
    await storage.save_agreement(application_id, outcome["call_id"], document, sha256(document))
    return document


def lump_sum_of(facts: dict[str, Any], rules) -> LumpSum:
    if facts.get("location_error"):
        raise LumpSumError(facts["location_error"])
    origin, destination = (Location(p["name"], p["country"], p["latitude"], p["longitude"])
                           for p in facts["locations"])
    return compute_lump_sum(rules, origin, destination, facts["working_days"], facts["travel_mode"])


# --- four eyes: initiate, verify, reject (four_eyes.py has the rules) ---------------------------

def effect_id(action_id: str) -> str:
    """The id (and cause) of the change a verified action makes: one per action, so a second
    verification, a retry or a race changes the money once; a rebuild makes it again under it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"clusterxchange:grants:verified:{action_id}"))


async def initiate(storage: Storage, slot: str, make: Callable[[dict[str, Any] | None], tuple[dict, list]],
                   wrap: Wrap, action_id: str) -> dict[str, Any]:
    """Keep a new action in its slot with its event (once: a redelivery finds it kept)."""
    current = await storage.action(slot)
    if current is not None and current["action_id"] == action_id:
        return current
    action, events = make(current)
    await storage.put_action(slot, current, action, wrap(domain.BudgetChange(events=events)))
    return action


async def initiate_balance(storage: Storage, application_id: str, initiator: str, at: datetime, *, action_id: str,
                           wrap: Wrap) -> dict[str, Any]:
    """The balance payment of an exchange, from the partnership's accepted report only: 409 without
    one, or when the agreement is not accepted, the balance already ordered, or the exchange did
    not take place; the days are bounded by the agreement's."""
    record = await still_open(storage, application_id)
    report = await storage.report(application_id)
    if report is None:
        raise Conflict("no report of this exchange was accepted by the partnership's review: the balance follows "
                       "the accepted report only", field="report", rule="accepted_by_review")
    days = domain.balance_days(record, report)
    budget = await storage.view(record["call_id"])
    rules = rule_set(budget["rule_set_version"])
    amount = domain.balance_figures(record, days, rules)[2]
    return await initiate(
        storage, four_eyes.slot(four_eyes.BALANCE_PAYMENT, application_id),
        lambda current: four_eyes.initiate(
            four_eyes.BALANCE_PAYMENT, action_id=action_id, call_id=record["call_id"],
            partnership_id=budget["partnership_id"], initiator=initiator, at=at, current=current,
            application_id=application_id, amount_cents=amount,
            params={"actual_working_days": days, "report_accepted_by": report["accepted_by"]},
            reason=f"balance for {days} of {domain.planned_days(record)} planned working days"),
        wrap, action_id)


async def verify(storage: Storage, action: dict[str, Any], verifier: four_eyes.Officer, at: datetime, wrap: Wrap,
                 effect: Callable[[dict[str, Any]], Awaitable[Any]]) -> dict[str, Any]:
    """The second officer's verification, then its effect (exactly once, by `effect_id`). A retry
    of an action verified already only finishes its effect."""
    if action["status"] != four_eyes.VERIFIED:
        parties = None
        if action.get("application_id"):  # still as it was initiated for: else nothing is verified
            record = await still_open(storage, action["application_id"])
            if action["kind"] == four_eyes.BALANCE_PAYMENT:
                domain.check_balance_due(record, action["params"]["actual_working_days"])
            parties = record["parties"]
        decided, events = four_eyes.verify(action, verifier, at, parties)
        if not await storage.decide_action(action, decided, wrap(domain.BudgetChange(events=events))):
            raise Conflict(f"action {action['action_id']} was decided meanwhile", field="action_id", rule="pending")
        action = decided
    elif action.get("verified_by") != verifier.subject:
        raise Conflict(f"action {action['action_id']} was verified already", field="action_id", rule="pending")
    await effect(action)
    return action


async def still_open(storage: Storage, application_id: str) -> dict[str, Any]:
    """An exchange's commitment record, if it is still committed (409 otherwise)."""
    outcome = await storage.commitment(application_id)
    if outcome is None or outcome["record"] is None or outcome["state"] == REFUSED:
        raise NotFound(f"no grant for exchange {application_id}")
    if outcome["state"] != "committed":
        raise Conflict(f"the commitment of {application_id} was {outcome['state']}", field="commitment",
                       rule="committed")
    return outcome["record"]


async def reject(storage: Storage, action: dict[str, Any], by: str, reason: str, at: datetime,
                 wrap: Wrap) -> dict[str, Any]:
    decided, events = four_eyes.reject(action, by, reason, at)
    if not await storage.decide_action(action, decided, wrap(domain.BudgetChange(events=events))):
        raise Conflict(f"action {action['action_id']} was decided meanwhile", field="action_id", rule="pending")
    return decided

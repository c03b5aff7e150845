"""The grants domain: commitments against a call's budget, agreement acceptance, payments and
the ledger that proves every euro (lump sums themselves: lump_sums.py). Pure Python, no I/O.

Money is integer euro cents. A budget's four balances always satisfy
``budget = available + committed + paid``: committed money includes payment orders the
finance system has not confirmed yet; it only becomes *paid* on confirmation.
Every operation on a budget returns a ``BudgetChange`` (ledger entries, the exchange's record
after it, events); storage moves the balances by its deltas with one compare-and-set of the
call's budget document and keeps the record in the exchange's own document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cx_shared.errors import Conflict, Forbidden, Invalid, NotFound
from cx_shared.events import Event
from cx_shared.events.grants import (REASON_MAX, BudgetToppedUp, CommitmentReduced, CommitmentReleased,
                                     GrantAgreementAccepted, GrantAgreementIssued, GrantCommitted, GrantRefused,
                                     PaymentOrdered, PaymentSettled)

from cx_shared.lump_sums import LumpSum, final_lump_sum, prefinancing_cents
from cx_shared.lump_sum_rules import LumpSumRuleSet

# ---------------------------------------------------------------------------------------------
# Budget, ledger, commitments
# ---------------------------------------------------------------------------------------------

BALANCES = ("budget_cents", "available_cents", "committed_cents", "paid_cents")

# How each kind of ledger entry moves the balances (budget, available, committed, paid) per cent.
EFFECTS: dict[str, tuple[int, int, int, int]] = {
    "budget_opened": (1, 1, 0, 0),
    "budget_topped_up": (1, 1, 0, 0),
    "budget_raised": (1, 1, 0, 0),  # the call's own budget changed before it opened (call.updated)
    "budget_lowered": (-1, -1, 0, 0),
    "commitment": (0, -1, 1, 0),
    "release": (0, 1, -1, 0),
    "payment_ordered": (0, 0, 0, 0),  # still committed until the finance system confirms it
    "payment_confirmed": (0, 0, -1, 1),
}


@dataclass(frozen=True)
class Cause:
    """Who did it and why: an actor plus the event (or HTTP request) that caused it."""

    actor: str
    at: datetime
    event_id: str | None = None
    event_type: str | None = None
    request_id: str | None = None

    def record(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_type": self.event_type, "request_id": self.request_id}


@dataclass
class Budget:
    """A call's balances and the exchanges a decision is about: storage loads only the one
    exchange at stake (so a decision costs the same whatever the size of the call); the pure
    tests fold many into one budget."""

    call_id: str
    partnership_id: str
    rule_set_version: str
    balances: dict[str, int]
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger_size: int = 0

    def apply(self, change: BudgetChange) -> None:
        """Fold a change into this state (what storage replays from the budget's log)."""
        for name, delta in change.deltas().items():
            self.balances[name] += delta
        self.commitments.update(change.commitments)
        self.refusals.update(change.refusals)
        self.ledger_size += len(change.entries)


@dataclass
class BudgetChange:
    """What one operation does to a budget; storage records all of it as one atomic append."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    commitments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def outcome(self) -> tuple[str, dict[str, Any]] | None:
        """The exchange's state and record after this change; None for a change of the budget alone."""
        for record in self.refusals.values():
            return "refused", record
        for record in self.commitments.values():
            return record["state"], record
        return None

    def deltas(self) -> dict[str, int]:
        totals = dict.fromkeys(BALANCES, 0)
        for e in self.entries:
            for name, sign in zip(BALANCES, EFFECTS[e["kind"]]):
                totals[name] += sign * e["amount_cents"]
        return {k: v for k, v in totals.items() if v}


class _Book:
    """Writes ledger entries against a running copy of the balances, refusing any overdraft."""

    def __init__(self, budget: Budget, change: BudgetChange):
        self.budget, self.change = budget, change
        deltas = change.deltas()  # entries this change already posted count too
        self.balances = {k: v + deltas.get(k, 0) for k, v in budget.balances.items()}

    def post(self, kind: str, amount: int, cause: Cause, reason: str, application_id: str | None = None,
             payment_id: str | None = None) -> dict[str, Any]:
        if amount < 0:
            raise ValueError("ledger amounts are never negative; the kind gives the direction")
        for name, sign in zip(BALANCES, EFFECTS[kind]):
            self.balances[name] += sign * amount
        if any(v < 0 for v in self.balances.values()):
            raise AssertionError(f"{kind} of {amount} would overdraw {self.budget.call_id}: {self.balances}")
        entry = {"seq": self.budget.ledger_size + len(self.change.entries) + 1, "kind": kind,
                 "call_id": self.budget.call_id, "application_id": application_id, "payment_id": payment_id,
                 "amount_cents": amount, "actor": cause.actor, "reason": reason, "cause": cause.record(),
                 "at": cause.at.isoformat(), "balances_after": dict(self.balances)}
        self.change.entries.append(entry)
        return entry


def opening(call_id: str, partnership_id: str, budget_cents: int, rule_set_version: str,
            cause: Cause, reason: str) -> tuple[Budget, BudgetChange]:
    """A new budget and its first ledger entry."""
    if budget_cents < 0:
        raise Invalid("a budget cannot be negative", field="budget_cents", rule="ge=0")
    budget = Budget(call_id, partnership_id, rule_set_version, dict.fromkeys(BALANCES, 0))
    change = BudgetChange()
    _Book(budget, change).post("budget_opened", budget_cents, cause, reason)
    budget.balances = {k: budget.balances[k] + change.deltas().get(k, 0) for k in BALANCES}
    return budget, change


def top_up(budget: Budget, amount_cents: int, cause: Cause, reason: str, key: str | None = None,
           verified_by: str | None = None) -> BudgetChange:
    """Add money to the budget (a verified top-up: four_eyes bounds and verifies it first)."""
    if amount_cents <= 0:
        raise Invalid("a top-up must be a positive amount", field="amount_cents", rule="gt=0")
    change = BudgetChange()
    book = _Book(budget, change)
    book.post("budget_topped_up", amount_cents, cause, reason or "top-up")
    change.events.append(BudgetToppedUp(call_id=budget.call_id, amount_cents=amount_cents,
                                        budget_after_cents=book.balances["budget_cents"],
                                        available_after_cents=book.balances["available_cents"], reason=reason,
                                        topped_up_by=cause.actor, idempotency_key=key, verified_by=verified_by))
    return change


def call_budget_changed(budget: Budget, change_cents: int, revision: int, cause: Cause) -> BudgetChange | None:
    """The call's own budget changed before it opened, by ``change_cents`` (top-ups stay). Nothing
    can be committed before a call opens, so a lower budget never overdraws what is available."""
    if change_cents == 0:
        return None
    change = BudgetChange()
    kind = "budget_raised" if change_cents > 0 else "budget_lowered"
    _Book(budget, change).post(kind, abs(change_cents), cause, f"call changed before opening (revision {revision})")
    return change


@dataclass(frozen=True)
class Parties:
    """What the agreement and the payment orders need to know of the visitor and host."""

    visitor_organisation_id: str
    visitor_legal_name: str
    visitor_country: str
    host_organisation_id: str
    host_legal_name: str
    host_country: str


def decided(budget: Budget, application_id: str, cause: Cause | None = None) -> bool:
    """Committed, or refused for this very cause. A refusal is not final: assessment waitlists
    the application and, once money is back, its host's acceptance comes again (a new event)
    and the grant is decided again."""
    key = commitment_key(application_id)
    refused = budget.refusals.get(key)
    again = refused is not None and cause is not None and refused["cause"]["event_id"] != cause.event_id
    return key in budget.commitments or (refused is not None and not again)


def clip(reason: str) -> str:
    """A reason within its contract's bound: it may quote another service's text (a withdrawal's)."""
    return reason if len(reason) <= REASON_MAX else reason[:REASON_MAX - 1] + "…"


def refuse(budget: Budget, application_id: str, reason: str, cause: Cause,
           required_cents: int = 0) -> BudgetChange | None:
    """Refuse the grant of an exchange (once per cause: None when it was already committed or refused)."""
    if decided(budget, application_id, cause):
        return None
    reason = clip(reason)
    available = budget.balances["available_cents"]
    return BudgetChange(
        refusals={commitment_key(application_id): {"reason": reason, "at": cause.at.isoformat(),
                                                   "cause": cause.record(), "required_cents": required_cents}},
        events=[GrantRefused(application_id=application_id, call_id=budget.call_id, reason=reason,
                             required_cents=required_cents, available_cents=available)])


def commit(budget: Budget, application_id: str, parties: Parties, lump_sum: LumpSum, rules: LumpSumRuleSet,
           cause: Cause, agreement_sha256: str, agreement_path: str,
           exchange: Mapping[str, Any]) -> BudgetChange | None:
    """Commit the lump sum against the budget, or refuse for want of funds (a GrantRefused).

    None when this exchange is committed or this cause refused it: one commitment per exchange, never twice."""
    if decided(budget, application_id, cause):
        return None
    key = commitment_key(application_id)
    available = budget.balances["available_cents"]
    if lump_sum.total_cents > available:
        why = (f"insufficient budget: the lump sum of {euros(lump_sum.total_cents)} "
               f"exceeds the {euros(available)} still available in call {budget.call_id}")
        return refuse(budget, application_id, why, cause, lump_sum.total_cents)
    change = BudgetChange()
    book = _Book(budget, change)
    book.post("commitment", lump_sum.total_cents, cause, f"grant for exchange {application_id}", application_id)
    pre = prefinancing_cents(rules, lump_sum.total_cents)
    change.commitments[key] = {
        "application_id": application_id, "call_id": budget.call_id, "state": "committed",
        "parties": parties.__dict__, "exchange": dict(exchange), "lump_sum": lump_sum.as_record(),
        "amount_cents": lump_sum.total_cents, "released_cents": 0, "ordered_cents": 0, "paid_cents": 0,
        "prefinancing_percent": rules.prefinancing_percent, "prefinancing_cents": pre,
        "committed_at": cause.at.isoformat(), "committed_by": cause.record(),
        "agreement": {"status": "issued", "sha256": agreement_sha256, "path": agreement_path,
                      "issued_at": cause.at.isoformat()},
        "payments": {}, "report": None,
    }
    change.events += [
        GrantCommitted(application_id=application_id, call_id=budget.call_id, travel_cents=lump_sum.travel_cents,
                       subsistence_cents=lump_sum.subsistence_cents, total_cents=lump_sum.total_cents,
                       rule_set_version=lump_sum.rule_set_version,
                       available_after_cents=book.balances["available_cents"], distance_km=lump_sum.distance_km,
                       distance_band=lump_sum.band, travel_mode=lump_sum.travel_mode,
                       working_days=lump_sum.days, capped=lump_sum.capped,
                       visitor_organisation_id=parties.visitor_organisation_id),
        GrantAgreementIssued(application_id=application_id, call_id=budget.call_id,
                             visitor_organisation_id=parties.visitor_organisation_id,
                             total_cents=lump_sum.total_cents, prefinancing_cents=pre,
                             document_sha256=agreement_sha256, document_path=agreement_path),
    ]
    return change


def release(budget: Budget, application_id: str, cause: Cause, reason: str,
            by_hand: bool = False, verified_by: str | None = None) -> BudgetChange | None:
    """Return the unspent commitment to the budget (withdrawal, host decline, cancellation; an
    officer's cancellation, `by_hand`, names him).

    None when there is nothing to release: no commitment, or already released (exactly once).
    Money already ordered for payment stays committed until the finance system confirms it."""
    record = budget.commitments.get(commitment_key(application_id))
    if record is None or record["state"] != "committed":
        return None
    reason = clip(reason)
    unspent = releasable(record)
    change = BudgetChange()
    if unspent:
        _Book(budget, change).post("release", unspent, cause, reason, application_id)
    change.commitments[commitment_key(application_id)] = {
        **record, "state": "released", "released_cents": record["released_cents"] + unspent,
        "released_at": cause.at.isoformat(), "release_reason": reason}
    change.events.append(CommitmentReleased(application_id=application_id, call_id=budget.call_id,
                                            released_cents=unspent, reason=reason,
                                            released_by=cause.actor if by_hand else None,
                                            verified_by=verified_by))
    return change


def accept_agreement(budget: Budget, application_id: str, organisation_id: str | None,
                     cause: Cause) -> BudgetChange:
    """The visitor accepts the grant agreement: the pre-financing is ordered."""
    record = _live_commitment(budget, application_id)
    parties = record["parties"]
    if organisation_id != parties["visitor_organisation_id"]:
        raise Forbidden("only the visitor organisation of this exchange can accept its grant agreement")
    if record["agreement"]["status"] != "issued":
        raise Conflict(f"the grant agreement of {application_id} is already {record['agreement']['status']}")
    change = BudgetChange()
    record = {**record, "agreement": {**record["agreement"], "status": "accepted", "accepted_at": cause.at.isoformat(),
                                      "accepted_by": cause.actor}}
    change.events.append(GrantAgreementAccepted(application_id=application_id, call_id=budget.call_id,
                                                accepted_by=cause.actor, document_sha256=record["agreement"]["sha256"]))
    record = _order_payment(budget, change, record, "prefinancing", record["prefinancing_cents"], cause)
    change.commitments[commitment_key(application_id)] = record
    return change


def planned_days(record: Mapping[str, Any]) -> int:
    """The working days the agreement was made for (its lump sum's)."""
    return record["lump_sum"]["inputs"]["working_days"]


def check_balance_due(record: Mapping[str, Any], actual_working_days: int) -> None:
    """A balance is due only on an accepted agreement whose report is not yet paid, for an exchange
    that took place (at least one working day), for no more days than the agreement planned."""
    if record["agreement"]["status"] != "accepted":
        raise Conflict("the grant agreement must be accepted before the balance can be paid",
                       field="agreement", rule="accepted")
    if record["report"] is not None:
        raise Conflict(f"the report of {record['application_id']} was already accepted and its balance ordered",
                       field="report", rule="once")
    if actual_working_days < 1:
        raise Conflict("the exchange did not take place (no working day): no balance is due",
                       field="actual_working_days", rule="ge=1")
    if actual_working_days > planned_days(record):
        raise Invalid(f"{actual_working_days} working days exceed the {planned_days(record)} the agreement planned",
                      field="actual_working_days", rule=f"le={planned_days(record)}")


def balance_days(record: Mapping[str, Any], report: Mapping[str, Any]) -> int:
    """The working days a balance is paid for, from the partnership's accepted report: it must
    say the exchange took place (an actual start and end, in order, and at least one working
    day); a longer exchange than planned is paid the agreement's days (the lump sum was fixed
    by the agreement)."""
    start, end = report.get("actual_start"), report.get("actual_end")
    if start is None or end is None or str(end) < str(start):
        raise Conflict("the accepted report does not show that the exchange took place (actual start and end)",
                       field="report", rule="exchange_took_place")
    days = min(report["actual_working_days"], planned_days(record))
    check_balance_due(record, days)
    return days


def balance_figures(record: Mapping[str, Any], actual_working_days: int,
                    rules: LumpSumRuleSet) -> tuple[LumpSum, int, int]:
    """The final lump sum for the days the exchange lasted, what it earned (never more than is
    still committed) and the balance still to order after the pre-financing."""
    final = final_lump_sum(rules, record["lump_sum"], actual_working_days)
    earned = min(final.total_cents, record["amount_cents"] - record["released_cents"])
    return final, earned, max(0, earned - record["ordered_cents"])


def accept_report(budget: Budget, application_id: str, actual_working_days: int, rules: LumpSumRuleSet,
                  cause: Cause, verified_by: str | None = None) -> BudgetChange:
    """The follow-up report is accepted and its balance verified: the balance is ordered,
    reduced by rule for a shorter exchange, and what the exchange did not earn goes back to the
    budget. `cause.actor` is who accepted the report (initiated the payment), `verified_by` the
    second officer."""
    record = _live_commitment(budget, application_id)
    check_balance_due(record, actual_working_days)
    final, earned, balance = balance_figures(record, actual_working_days, rules)
    report = {"accepted_by": cause.actor, "actual_working_days": actual_working_days}  # on its events
    unearned = releasable(record) - balance
    change = BudgetChange()
    record = {**record, "report": {"accepted_at": cause.at.isoformat(), "accepted_by": cause.actor,
                                   "verified_by": verified_by, "actual_working_days": actual_working_days, "final_lump_sum": final.as_record(),
                                   "earned_cents": earned,
                                   "overpaid_cents": max(0, record["ordered_cents"] - earned)}}
    if unearned > 0:
        reason = (f"exchange of {actual_working_days} working days instead of "
                  f"{record['lump_sum']['inputs']['working_days']}: lump sum reduced by rule")
        _Book(budget, change).post("release", unearned, cause, reason, application_id)
        record["released_cents"] += unearned
        change.events.append(CommitmentReduced(application_id=application_id, call_id=budget.call_id,
                                               released_cents=unearned, reason=reason,
                                               total_after_cents=record["amount_cents"] - record["released_cents"],
                                               **report, verified_by=verified_by))
    if balance > 0:
        record = _order_payment(budget, change, record, "balance", balance, cause, **report, verified_by=verified_by)
    change.commitments[commitment_key(application_id)] = record
    return change


def confirm_payment(budget: Budget, application_id: str, payment_id: str, finance_reference: str,
                    cause: Cause, call_id: str | None = None) -> BudgetChange | None:
    """The finance system executed a payment order: the money moves from committed to paid.
    None for an unknown or already confirmed order (a confirmation counts once). A confirmation
    naming another call than the commitment's is refused (it would settle call Y's money on X)."""
    key = commitment_key(application_id)
    record = budget.commitments.get(key)
    if record is not None and call_id is not None and call_id != record["call_id"]:
        raise Conflict(f"the confirmation names call {call_id}, the commitment of {application_id} is of call "
                       f"{record['call_id']}", field="call_id", rule="the commitment's call")
    payment = (record or {}).get("payments", {}).get(payment_key(payment_id))
    if payment is None or payment["status"] != "ordered":
        return None
    change = BudgetChange()
    amount = payment["amount_cents"]
    _Book(budget, change).post("payment_confirmed", amount, cause, f"{payment['kind']} paid ({finance_reference})",
                               application_id, payment_id)
    payment = {**payment, "status": "confirmed", "confirmed_at": cause.at.isoformat(),
               "finance_reference": finance_reference}
    change.commitments[key] = {**record, "paid_cents": record["paid_cents"] + amount,
                               "payments": {**record["payments"], payment_key(payment_id): payment}}
    change.events.append(PaymentSettled(payment_id=payment_id, application_id=application_id,
                                        call_id=budget.call_id, kind=payment["kind"], amount_cents=amount,
                                        finance_reference=finance_reference))
    return change


def _order_payment(budget: Budget, change: BudgetChange, record: dict[str, Any], kind: str, amount: int,
                   cause: Cause, **report: Any) -> dict[str, Any]:
    payment_id = f"{record['application_id']}:{kind}"
    parties = record["parties"]
    _Book(budget, change).post("payment_ordered", amount, cause, f"{kind} of the lump sum",
                               record["application_id"], payment_id)
    payment = {"payment_id": payment_id, "kind": kind, "amount_cents": amount, "status": "ordered",
               "ordered_at": cause.at.isoformat(), "payee_organisation_id": parties["visitor_organisation_id"],
               "initiated_by": report.get("accepted_by"), "verified_by": report.get("verified_by")}
    change.events.append(PaymentOrdered(payment_id=payment_id, application_id=record["application_id"],
                                        call_id=budget.call_id, kind=kind, amount_cents=amount,
                                        payee_organisation_id=parties["visitor_organisation_id"],
                                        payee_legal_name=parties["visitor_legal_name"],
                                        payee_country=parties["visitor_country"], **report))
    return {**record, "ordered_cents": record["ordered_cents"] + amount,
            "payments": {**record["payments"], payment_key(payment_id): payment}}


def _live_commitment(budget: Budget, application_id: str) -> dict[str, Any]:
    record = budget.commitments.get(commitment_key(application_id))
    if record is None:
        raise NotFound(f"no commitment for exchange {application_id} in call {budget.call_id}")
    if record["state"] != "committed":
        raise Conflict(f"the commitment of {application_id} was {record['state']}")
    return record


def releasable(record: Mapping[str, Any]) -> int:
    return record["amount_cents"] - record["released_cents"] - record["ordered_cents"]


# Commitments and payments are keyed by id inside the budget document; a dot or a dollar
# would be read by the database as a path, so they are escaped.
def commitment_key(application_id: str) -> str:
    return application_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


payment_key = commitment_key


# ---------------------------------------------------------------------------------------------
# Reconciliation: the ledger alone must explain the balances
# ---------------------------------------------------------------------------------------------


def reconcile(call_id: str, ledger: Iterable[Mapping[str, Any]], recorded: Mapping[str, int]) -> dict[str, Any]:
    """Replay the ledger from zero: every entry's balances must follow from the one before,
    none may go negative, the final balances must equal the budget's running balances, and
    budget = available + committed + paid must hold."""
    balances = dict.fromkeys(BALANCES, 0)
    problems: list[str] = []
    ordered = confirmed = count = 0
    for expected_seq, entry in enumerate(ledger, start=1):
        count += 1
        if entry["seq"] != expected_seq:
            problems.append(f"entry {expected_seq} carries seq {entry['seq']}: the ledger has a gap or reorder")
        for name, sign in zip(BALANCES, EFFECTS[entry["kind"]]):
            balances[name] += sign * entry["amount_cents"]
        ordered += entry["amount_cents"] if entry["kind"] == "payment_ordered" else 0
        confirmed += entry["amount_cents"] if entry["kind"] == "payment_confirmed" else 0
        if any(v < 0 for v in balances.values()):
            problems.append(f"entry {entry['seq']} drives a balance negative: {balances}")
        if dict(entry["balances_after"]) != balances:
            problems.append(f"entry {entry['seq']} records {entry['balances_after']}, the replay gives {balances}")
    identity = balances["budget_cents"] == (balances["available_cents"] + balances["committed_cents"]
                                           + balances["paid_cents"])
    if not identity:
        problems.append("budget != available + committed + paid")
    for name in BALANCES:
        if recorded.get(name) != balances[name]:
            problems.append(f"{name}: ledger gives {balances[name]}, the budget records {recorded.get(name)}")
    return {"call_id": call_id, "entries": count, **balances,
            "ordered_unconfirmed_cents": ordered - confirmed,
            "identity": "budget_cents = available_cents + committed_cents + paid_cents",
            "identity_holds": identity, "matches_recorded_balances": not any(": ledger gives" in p for p in problems),
            "balanced": not problems, "problems": problems}


def euros(cents: int) -> str:
    return f"EUR {cents // 100:,}.{cents % 100:02d}"

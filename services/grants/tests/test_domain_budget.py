"""Commitments, releases, agreement acceptance, payments, the ledger and four eyes: pure domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from cx_shared.errors import Conflict, Forbidden, Invalid
from cx_shared.events.grants import (ActionInitiated, ActionRejected, ActionVerified, CommitmentReduced,
                                     CommitmentReleased, GrantCommitted, GrantRefused, PaymentOrdered, PaymentSettled)
from grants import domain, four_eyes
from grants.four_eyes import Officer
from grants.agreement import render_agreement, render_from_commitment, sha256
from grants.domain import Cause, Parties
from cx_shared.lump_sums import Location, compute_lump_sum
from cx_shared.lump_sum_rules import DEFAULT_V1

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
BRUSSELS = Location("Brussels", "BE", 50.85045, 4.34878)
VILNIUS = Location("Vilnius", "LT", 54.68916, 25.2798)
PARTIES = Parties("org-v", "Visitor Cluster asbl", "BE", "org-h", "Šiaulių Klasteris", "LT")
EXCHANGE = {"planned_start": "2026-04-06", "planned_end": "2026-04-17", "working_days": 10, "travel_mode": "green"}


def cause(actor: str = "officer", event_id: str | None = None) -> Cause:
    return Cause(actor=actor, at=AT, event_id=event_id)


def applied(budget: domain.Budget, change: domain.BudgetChange) -> domain.Budget:
    """What storage does with a change (fold it, keep the entries), in memory for the pure tests."""
    budget.apply(change)
    budget.ledger = getattr(budget, "ledger", []) + change.entries
    return budget


def new_budget(cents: int) -> domain.Budget:
    budget, opening = domain.opening("call-1", "p-1", cents, "default-v1", cause(), "opened")
    budget.ledger = opening.entries
    budget.ledger_size = len(opening.entries)
    return budget


def lump(days: int = 10):
    return compute_lump_sum(DEFAULT_V1, BRUSSELS, VILNIUS, days, "green")


def commit(budget, application_id, days=10, event_id=None):
    return domain.commit(budget, application_id, PARTIES, lump(days), DEFAULT_V1, cause("assessment", event_id),
                         "sha", f"/agreements/{application_id}/document", EXCHANGE)


def test_commitments_until_the_budget_runs_out_then_a_refusal_with_the_reason():
    total = lump().total_cents
    budget = new_budget(2 * total + total // 2)
    for app in ("a1", "a2"):
        change = commit(budget, app)
        assert isinstance(change.events[0], GrantCommitted)
        applied(budget, change)
    refusal = commit(budget, "a3")
    refused = refusal.events[0]
    assert isinstance(refused, GrantRefused) and not refusal.entries and not refusal.commitments
    assert refused.required_cents == total and refused.available_cents == total // 2
    assert "insufficient budget" in refused.reason
    applied(budget, refusal)
    budget.balances["available_cents"] += 10 * total  # even with money again, the refusal stands: decided once
    assert commit(budget, "a3") is None
    budget.balances["available_cents"] -= 10 * total
    assert budget.balances == {"budget_cents": 2 * total + total // 2, "available_cents": total // 2,
                               "committed_cents": 2 * total, "paid_cents": 0}


def test_b_a_refused_grant_is_decided_again_on_the_hosts_next_acceptance():
    """Issue 13 (b): assessment waitlists a refused application and promotes it when money is
    back, with a new host acceptance; grants decides again instead of keeping it stuck."""
    total = lump().total_cents
    budget = new_budget(total // 2)
    applied(budget, commit(budget, "a1", event_id="accepted-1"))
    assert commit(budget, "a1", event_id="accepted-1") is None  # the same acceptance again: decided once
    budget.balances["budget_cents"] += total
    budget.balances["available_cents"] += total  # a top-up
    again = commit(budget, "a1", event_id="accepted-2")
    assert isinstance(again.events[0], GrantCommitted) and again.commitments
    applied(budget, again)
    assert commit(budget, "a1", event_id="accepted-3") is None  # committed: never twice
    assert budget.balances["committed_cents"] == total


def test_one_commitment_per_exchange():
    budget = applied(new_budget(1_000_000), commit(new_budget(1_000_000), "a1"))
    assert commit(budget, "a1") is None


def test_release_returns_the_money_exactly_once():
    budget = new_budget(1_000_000)
    applied(budget, commit(budget, "a1"))
    change = domain.release(budget, "a1", cause("applications"), "application withdrawn")
    assert isinstance(change.events[0], CommitmentReleased) and change.events[0].released_cents == lump().total_cents
    applied(budget, change)
    assert budget.balances["available_cents"] == 1_000_000 and budget.balances["committed_cents"] == 0
    assert domain.release(budget, "a1", cause(), "again") is None
    assert domain.release(budget, "never-committed", cause(), "?") is None


def test_agreement_acceptance_orders_the_prefinancing_for_the_visitor_only_once():
    budget = new_budget(1_000_000)
    applied(budget, commit(budget, "a1"))
    with pytest.raises(Forbidden):
        domain.accept_agreement(budget, "a1", "org-someone-else", cause("mallory"))
    change = domain.accept_agreement(budget, "a1", "org-v", cause("alice"))
    order = next(e for e in change.events if isinstance(e, PaymentOrdered))
    assert order.kind == "prefinancing" and order.amount_cents == lump().total_cents * 70 // 100
    assert order.payee_organisation_id == "org-v"
    applied(budget, change)
    assert budget.balances["committed_cents"] == lump().total_cents  # ordered money stays committed until paid
    with pytest.raises(Conflict):
        domain.accept_agreement(budget, "a1", "org-v", cause("alice"))


def test_balance_after_the_report_with_a_shorter_exchange_and_payment_confirmations():
    budget = new_budget(1_000_000)
    full = lump(10)
    applied(budget, commit(budget, "a1"))
    with pytest.raises(Conflict):  # no report before the agreement
        domain.accept_report(budget, "a1", 10, DEFAULT_V1, cause())
    applied(budget, domain.accept_agreement(budget, "a1", "org-v", cause("alice")))
    pre = full.total_cents * 70 // 100

    change = domain.accept_report(budget, "a1", 7, DEFAULT_V1, cause())
    earned = full.travel_cents + 7 * 14_000
    reduced = next(e for e in change.events if isinstance(e, CommitmentReduced))
    balance = next(e for e in change.events if isinstance(e, PaymentOrdered))
    assert reduced.released_cents == full.total_cents - earned
    assert balance.kind == "balance" and balance.amount_cents == earned - pre
    applied(budget, change)
    with pytest.raises(Conflict):
        domain.accept_report(budget, "a1", 7, DEFAULT_V1, cause())

    for payment_id in ("a1:prefinancing", "a1:balance"):
        settled = domain.confirm_payment(budget, "a1", payment_id, f"FIN-{payment_id}", cause("finance"))
        assert isinstance(settled.events[0], PaymentSettled)
        applied(budget, settled)
        assert domain.confirm_payment(budget, "a1", payment_id, "again", cause("finance")) is None

    assert budget.balances == {"budget_cents": 1_000_000, "available_cents": 1_000_000 - earned,
                               "committed_cents": 0, "paid_cents": earned}
    report = domain.reconcile("call-1", budget.ledger, budget.balances)
    assert report["balanced"], report["problems"]
    assert report["entries"] == 7  # opened, commitment, order, release, order, 2 confirmations


def test_reconciliation_catches_a_tampered_ledger_or_balance():
    budget = new_budget(500_000)
    applied(budget, commit(budget, "a1"))
    assert domain.reconcile("call-1", budget.ledger, budget.balances)["balanced"]
    tampered = [dict(e) for e in budget.ledger]
    tampered[1]["amount_cents"] -= 100
    assert not domain.reconcile("call-1", tampered, budget.balances)["balanced"]
    wrong = {**budget.balances, "available_cents": budget.balances["available_cents"] + 1}
    result = domain.reconcile("call-1", budget.ledger, wrong)
    assert not result["balanced"] and not result["matches_recorded_balances"]


def test_ledger_entries_name_actor_reason_cause_and_time():
    budget = new_budget(500_000)
    change = domain.commit(budget, "a1", PARTIES, lump(), DEFAULT_V1,
                           Cause(actor="/clusterxchange/assessment", at=AT, event_id="ev-1",
                                 event_type="eu.clusterxchange.host.accepted.v1"), "sha", "/p", EXCHANGE)
    entry = change.entries[0]
    assert entry["kind"] == "commitment" and entry["seq"] == 2 and entry["actor"] == "/clusterxchange/assessment"
    assert entry["cause"]["event_id"] == "ev-1" and entry["at"] == AT.isoformat() and "a1" in entry["reason"]


def test_agreement_pdf_names_the_parties_and_amounts_and_renders_identically():
    budget = new_budget(1_000_000)
    change = commit(budget, "a1")
    record = change.commitments["a1"]
    document = render_agreement(application_id="a1", call_id="call-1", parties=PARTIES.__dict__,
                                exchange=EXCHANGE, lump_sum=record["lump_sum"],
                                prefinancing_cents=record["prefinancing_cents"], rules=DEFAULT_V1, issued_at=AT)
    assert sha256(render_from_commitment(record, DEFAULT_V1)) == sha256(document)
    text = "\n".join(page.extract_text() for page in PdfReader(__import__("io").BytesIO(document)).pages)
    total = record["amount_cents"]
    assert domain.euros(total) in text and domain.euros(record["prefinancing_cents"]) in text
    assert "Visitor Cluster asbl" in text and "Siauliu Klasteris" in text
    assert "Brussels" in text and "Vilnius" in text and "default-v1" in text


def test_issue_13g_a_call_changed_before_opening_moves_its_budget_by_the_change_and_keeps_top_ups():
    budget = new_budget(1_000_000)
    applied(budget, domain.top_up(budget, 200_000, cause(), "early"))
    applied(budget, domain.call_budget_changed(budget, 500_000, 2, cause("applications")))
    applied(budget, domain.call_budget_changed(budget, -300_000, 3, cause("applications")))
    assert (budget.balances["budget_cents"], budget.balances["available_cents"]) == (1_400_000, 1_400_000)
    assert [(e["kind"], e["amount_cents"]) for e in budget.ledger[-2:]] == [("budget_raised", 500_000),
                                                                           ("budget_lowered", 300_000)]
    assert domain.reconcile("call-1", budget.ledger, budget.balances)["balanced"]
    assert domain.call_budget_changed(budget, 0, 4, cause("applications")) is None  # the budget did not change


# --- issue 23, findings 3 and 7: four eyes on money, the balance from the accepted report only ---

def field_rule(refused) -> tuple[str, str]:
    """The field and rule a problem names (what its RFC 9457 body carries)."""
    error = refused.value.errors[0]
    return error["field"], error["rule"]


REPORT = {"accepted_by": "reviewer", "actual_start": "2026-04-06", "actual_end": "2026-04-17",
          "actual_working_days": 10}


def started(kind=four_eyes.BALANCE_PAYMENT, current=None, at=AT, action_id="act-1", initiator="alice"):
    return four_eyes.initiate(kind, action_id=action_id, call_id="call-1", partnership_id="p-1", initiator=initiator,
                              at=at, current=current, application_id="a1", amount_cents=1000)


def test_an_action_is_initiated_by_one_officer_and_verified_by_another_each_step_an_event_naming_who():
    action, events = started()
    assert action["status"] == "pending" and isinstance(events[0], ActionInitiated)
    assert events[0].initiated_by == "alice" and events[0].expires_at == AT + four_eyes.TTL
    with pytest.raises(Forbidden) as refused:
        four_eyes.verify(action, Officer("alice"), AT)
    assert field_rule(refused) == ("verified_by", "initiator_cannot_verify")
    done, events = four_eyes.verify(action, Officer("bob"), AT + timedelta(hours=1))
    assert done["status"] == "verified" and done["verified_by"] == "bob"
    assert isinstance(events[0], ActionVerified) and (events[0].initiated_by, events[0].verified_by) == ("alice", "bob")
    with pytest.raises(Conflict):  # verified once
        four_eyes.verify(done, Officer("carol"), AT)


def test_a_pending_action_can_be_rejected_and_then_verifies_nothing():
    action, _ = started()
    done, events = four_eyes.reject(action, "bob", "wrong amount", AT)
    assert done["status"] == "rejected" and isinstance(events[0], ActionRejected) and events[0].rejected_by == "bob"
    with pytest.raises(Conflict):
        four_eyes.verify(done, Officer("carol"), AT)


def test_an_action_expires_and_is_superseded_by_the_next_initiation_but_never_while_pending():
    action, _ = started()
    with pytest.raises(Conflict) as refused:  # one live action per kind and subject
        started(current=action, action_id="act-2")
    assert field_rule(refused) == ("action_id", "one_pending_action")
    later = AT + four_eyes.TTL
    assert four_eyes.status_at(action, later) == "expired"
    with pytest.raises(Conflict):
        four_eyes.verify(action, Officer("bob"), later)
    again, events = started(current=action, at=later, action_id="act-2")
    assert again["supersedes"] == "act-1" and events[0].supersedes == "act-1"
    rejected, _ = four_eyes.reject(again, "bob", "no", later)
    third, _ = started(current=rejected, at=later, action_id="act-3")  # a decided one is simply replaced
    assert third["supersedes"] is None


def test_an_officer_of_a_party_has_a_conflict_of_interest():
    action, _ = started()
    parties = {"visitor_organisation_id": "org-v", "host_organisation_id": "org-h"}
    with pytest.raises(Forbidden) as refused:
        four_eyes.verify(action, Officer("bob", "org-h"), AT, parties)
    assert field_rule(refused) == ("officer", "conflict_of_interest")
    assert four_eyes.verify(action, Officer("bob", "org-other"), AT, parties)[0]["status"] == "verified"


def test_a_top_up_is_bounded():
    four_eyes.check_top_up(four_eyes.TOP_UP_MAX_CENTS)
    for amount in (0, four_eyes.TOP_UP_MAX_CENTS + 1):
        with pytest.raises(Invalid) as refused:
            four_eyes.check_top_up(amount)
        assert field_rule(refused)[0] == "amount_cents"


def agreed_budget():
    budget = new_budget(1_000_000)
    applied(budget, commit(budget, "a1"))
    applied(budget, domain.accept_agreement(budget, "a1", "org-v", cause("alice")))
    return budget, budget.commitments[domain.commitment_key("a1")]


def test_the_balance_follows_the_accepted_report_only_bounded_by_the_agreements_days():
    budget = new_budget(1_000_000)
    applied(budget, commit(budget, "a1"))
    with pytest.raises(Conflict):  # no agreement accepted yet
        domain.balance_days(budget.commitments[domain.commitment_key("a1")], REPORT)
    budget, record = agreed_budget()
    assert domain.balance_days(record, REPORT) == 10
    assert domain.balance_days(record, {**REPORT, "actual_working_days": 7}) == 7
    assert domain.balance_days(record, {**REPORT, "actual_working_days": 40}) == 10  # the agreement's days, at most
    for not_held in ({**REPORT, "actual_working_days": 0}, {**REPORT, "actual_end": None},
                     {**REPORT, "actual_end": "2026-04-01"}):
        with pytest.raises(Conflict):
            domain.balance_days(record, not_held)
    with pytest.raises(Invalid) as refused:  # nobody picks more days than the agreement planned
        domain.accept_report(budget, "a1", 11, DEFAULT_V1, cause())
    assert field_rule(refused)[0] == "actual_working_days"
    with pytest.raises(Conflict):
        domain.accept_report(budget, "a1", 0, DEFAULT_V1, cause())
    change = domain.accept_report(budget, "a1", 10, DEFAULT_V1, cause("reviewer"), verified_by="bob")
    order = next(e for e in change.events if isinstance(e, PaymentOrdered))
    assert (order.accepted_by, order.verified_by) == ("reviewer", "bob")
    assert order.amount_cents == domain.balance_figures(record, 10, DEFAULT_V1)[2] == lump().total_cents * 30 // 100
    applied(budget, change)
    with pytest.raises(Conflict):  # paid once
        domain.balance_days(budget.commitments[domain.commitment_key("a1")], REPORT)


def test_issue_23_7_a_confirmation_of_another_call_is_refused_naming_the_field():
    budget, _ = agreed_budget()
    with pytest.raises(Conflict) as refused:
        domain.confirm_payment(budget, "a1", "a1:prefinancing", "FIN-1", cause("finance"), call_id="call-Y")
    assert field_rule(refused)[0] == "call_id"
    assert domain.confirm_payment(budget, "a1", "a1:prefinancing", "FIN-1", cause("finance"), call_id="call-1")

"""The pure domain: eligibility rules, the envelope, the panel, rounds, hosts, appeals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cx_shared.errors import Conflict, Forbidden, Invalid
from cx_shared.lump_sums import LumpSumError, exchange_lump_sum

from assessment import domain
from assessment.domain import Assessor, CallBook, submission_mark
from assessment import rules
from assessment.rules import RULES, Candidate, Context, Party

OPENS, CLOSES = date(2026, 1, 1), date(2026, 12, 31)
FIVE_DAYS = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents
PM = Assessor("pm")
CONTEXT = Context(OPENS, CLOSES)


def party(org: str, country: str, kind: str = "cluster_organisation", cluster: str | None = None) -> Party:
    return Party(org, country, kind, cluster)


def candidate(app_id: str = "app-1", **changes) -> Candidate:
    base = Candidate(app_id, party(f"v-{app_id}", "FR"), party(f"h-{app_id}", "DE"), date(2026, 3, 2),
                     date(2026, 3, 6), 5, date(2026, 2, 1))
    return replace(base, **changes)


def book(mode: str = "automatic", budget: int = 10 * FIVE_DAYS, countries=("FR", "DE", "IT", "ES")) -> CallBook:
    return CallBook.open("call-1", "p-1", OPENS, CLOSES, budget, mode, list(countries), "default-v1")


def kinds(facts) -> list[str]:
    return [type(f).__name__ for f in facts]


# --- each eligibility rule failing alone, with its reason ---------------------------------

FAILING_ALONE = {
    "eligible_countries": dict(host=party("h", "US")),
    "organisation_types": dict(visitor=party("v", "FR", "large_enterprise")),
    "transnational": dict(host=party("h", "FR")),
    "sme_cluster_membership": dict(visitor=party("v", "FR", "sme", None)),
    "duration": dict(working_days=2),
    "dates_inside_call": dict(submitted_on=date(2027, 1, 5)),
}


@pytest.mark.parametrize("rule", sorted(FAILING_ALONE))
def test_each_rule_fails_alone_with_its_reason(rule):
    b = book()
    checked, rejected = b.admit(candidate(**FAILING_ALONE[rule]), FIVE_DAYS)
    failed = [o for o in checked.outcomes if not o["passed"]]
    assert [o["rule"] for o in failed] == [rule]
    assert failed[0]["reason"] and rejected.reasons == [f"{rule}: {failed[0]['reason']}"]
    assert isinstance(rejected, domain.Rejected) and not checked.eligible
    assert len(checked.outcomes) == len(RULES)  # every rule judged, not only the first failing one


def test_duration_above_one_month_fails():
    checked, _ = book().admit(candidate(planned_end=date(2026, 4, 2), working_days=23), FIVE_DAYS)
    [failed] = [o for o in checked.outcomes if not o["passed"]]
    assert failed["rule"] == "duration" and "ends by 2026-04-01" in failed["reason"]


def test_a_full_month_of_23_working_days_is_not_too_long():
    # 2 March to 1 April 2026 is one month, as the applications service accepts it on submission
    checked, _ = book().admit(candidate(planned_end=date(2026, 4, 1), working_days=23),
                              exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 23,
                                                "standard").total_cents)
    assert checked.eligible, checked.outcomes


def test_a_call_may_cap_the_working_days():
    capped = [{**r, "params": {"max_working_days": 20}} if r["rule"] == "duration" else r
              for r in rules.default_rules(["FR", "DE"])]
    verdict = rules.evaluate(capped, candidate(planned_end=date(2026, 4, 1), working_days=23), CONTEXT)
    [failed] = [o for o in verdict if not o.passed]
    assert failed.rule == "duration" and "at most 20" in failed.reason


def test_overlapping_exchange_of_the_visitor_fails_alone():
    b = book()
    b.admit(candidate("a1"), FIVE_DAYS)
    later = candidate("a2", visitor=party("v-a1", "FR"), planned_start=date(2026, 3, 5), planned_end=date(2026, 3, 11))
    checked, _ = b.admit(later, FIVE_DAYS)
    failed = [o for o in checked.outcomes if not o["passed"]]
    assert [o["rule"] for o in failed] == ["no_overlapping_exchange"] and "a1" in failed[0]["reason"]


def test_host_capacity_fails_alone_when_the_offer_is_full():
    b = book()
    rules = [dict(r) for r in b.policy.rules]
    for r in rules:
        if r["rule"] == "host_capacity":
            r["params"] = {"offer_capacities": {"offer-9": 1}}
    b.change_rule_set("pm", rules)
    b.admit(candidate("a1", offer_id="offer-9"), FIVE_DAYS)
    checked, _ = b.admit(candidate("a2", offer_id="offer-9"), FIVE_DAYS)
    assert [o["rule"] for o in checked.outcomes if not o["passed"]] == ["host_capacity"]


def test_rule_set_change_leaves_earlier_decisions_untouched():
    b = book()
    b.admit(candidate("a1"), FIVE_DAYS)
    rules = [r if r["rule"] != "eligible_countries" else {"rule": r["rule"], "params": {"countries": ["IT"]}}
             for r in b.policy.rules]
    (published,) = b.change_rule_set("pm", rules)
    checked, rejected = b.admit(candidate("a2"), FIVE_DAYS)
    assert published.rule_set_version == "default-v1@2" and checked.rule_set_version == "default-v1@2"
    assert isinstance(rejected, domain.Rejected)
    first = b.entry("a1")
    assert (first.status, first.rule_set_version, first.eligible) == ("approved", "default-v1@1", True)


def test_unknown_rule_is_refused():
    with pytest.raises(Invalid):
        book().change_rule_set("pm", [{"rule": "be_nice", "params": {}}])


def test_a_call_keeps_a_bounded_number_of_rule_set_versions():
    b = book()
    for _ in range(domain.MAX_RULE_SET_VERSIONS - 1):
        b.change_rule_set("pm")
    with pytest.raises(Conflict, match="rule-set versions"):
        b.change_rule_set("pm")
    assert len(b.policies) == domain.MAX_RULE_SET_VERSIONS


def test_a_parameter_a_rule_cannot_read_is_refused_by_name_and_changes_nothing():
    b = book()
    wrong = [{"rule": "duration", "params": {"min_working_days": "three"}},
             {"rule": "host_capacity", "params": {"offer_capacities": {"offer-9": -1}}},
             {"rule": "dates_inside_call", "params": {"exchanges_end_by": "soon"}},
             {"rule": "transnational", "params": {"strict": True}}]
    with pytest.raises(Invalid) as refused:
        b.change_rule_set("pm", wrong)
    assert [e["field"] for e in refused.value.errors] == [
        "rules.0.params.min_working_days", "rules.1.params.offer_capacities", "rules.2.params.exchanges_end_by",
        "rules.3.params.strict"]
    assert {e["rule"] for e in refused.value.errors} == {"rule_parameter"}
    assert b.policy.version == 1 and kinds(b.admit(candidate("a1"), FIVE_DAYS)) == ["Checked", "Approved"]


# --- automatic mode: arrival order within the envelope -------------------------------------

def test_automatic_approves_in_arrival_order_while_the_envelope_allows():
    b = book(budget=2 * FIVE_DAYS)
    decisions = [b.admit(candidate(f"a{i}"), FIVE_DAYS)[-1] for i in range(1, 4)]
    assert kinds(decisions) == ["Approved", "Approved", "Waitlisted"]
    assert b.envelope_left_cents == 0
    # a small one arriving later does not jump the waitlist
    assert kinds(b.admit(candidate("a4"), 1)[-1:]) == ["Waitlisted"]


def test_released_commitment_promotes_the_first_waitlisted():
    b = book(budget=FIVE_DAYS)
    for i in range(1, 4):
        b.admit(candidate(f"a{i}"), FIVE_DAYS)
    b.host_decides("a1", "h-a1", True)
    promoted = b.commitment_released("a1", "withdrawn by the visitor")
    assert [(type(f).__name__, f.application_id) for f in promoted] == [("Approved", "a2")]
    assert b.entry("a3").status == "waitlisted" and b.entry("a1").status == "released"
    assert b.commitment_released("a1", "again") == []  # nothing more to release


def test_the_waitlist_moves_in_the_order_applications_were_submitted_not_consumed():
    """Kafka keeps no order across applications: the one submitted first may be consumed last
    (the race that made a top-up promote the wrong two in the budget-truth e2e test)."""
    b = book(budget=1)
    at = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    for app_id, second in (("third", 3), ("second", 2), ("first", 1)):  # consumed in reverse
        b.admit(candidate(app_id, submitted_at=at + timedelta(seconds=second)), FIVE_DAYS)
    assert [b.entry(a).arrival for a in ("first", "second", "third")] == [3, 2, 1]
    promoted = b.topped_up(2 * FIVE_DAYS)
    assert [(type(f).__name__, f.application_id) for f in promoted] == [("Approved", "first"), ("Approved", "second")]
    assert b.entry("third").status == "waitlisted"


def test_a_submission_moment_orders_as_text_whatever_its_zone():
    paris = timezone(timedelta(hours=1))
    marks = [submission_mark(datetime(2026, 2, 1, 9, 0, 0, 5, tzinfo=UTC)),
             submission_mark(datetime(2026, 2, 1, 10, 0, 1, tzinfo=paris)),  # 09:00:01 UTC
             submission_mark(datetime(2026, 2, 1, 9, 0, 2))]  # naive: UTC
    assert marks == sorted(marks) and len(set(map(len, marks))) == 1 and submission_mark(None) == ""


def test_grant_refused_waitlists_and_keeps_the_host_acceptance():
    b = book(budget=FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.host_decides("a1", "h-a1", True)
    assert kinds(b.grant_refused("a1", "budget exhausted")) == ["Waitlisted"]
    assert b.envelope_left_cents == FIVE_DAYS
    b.admit(candidate("a2"), FIVE_DAYS)  # waits behind a1
    promoted = b.commitment_released("other", "cancelled")
    assert [(type(f).__name__, f.application_id) for f in promoted] == [("Approved", "a1"), ("HostAcceptance", "a1")]


def test_the_waiting_count_follows_the_waiting_list_and_holds_for_entries_not_loaded():
    b = book(budget=FIVE_DAYS)
    for i in range(1, 4):
        b.admit(candidate(f"a{i}"), FIVE_DAYS)
    assert b.waiting == 2
    b.withdrawn("a3")
    b.commitment_released("a1", "no-show")  # promotes a2
    assert b.waiting == 0 and b.entry("a2").status == "approved"
    # a book holding only the envelope still knows somebody waits: a newcomer does not jump ahead
    envelope_only = replace(book(budget=10 * FIVE_DAYS), waiting=1)
    assert kinds(envelope_only.admit(candidate("a9"), FIVE_DAYS)) == ["Checked", "Waitlisted"]
    assert envelope_only.waiting == 2


def test_a_state_being_decided_counts_by_the_room_it_takes():
    b = book()
    b.admit(candidate("a1"), FIVE_DAYS)
    approved = b.entry("a1")
    released, waiting = replace(approved, status="released"), replace(approved, status="waitlisted")
    assert domain.more_binding(released, approved) is approved and domain.more_binding(approved, waiting) is approved
    assert domain.more_binding(released, waiting) is waiting and domain.more_binding(released, released) is released


def test_an_offer_capacity_is_read_from_the_rule_set():
    b = book()
    assert b.policy.offer_capacity("offer-9") is None
    rules = [r if r["rule"] != "host_capacity" else {"rule": "host_capacity",
                                                    "params": {"offer_capacities": {"offer-9": 1}}}
             for r in b.policy.rules]
    b.change_rule_set("pm", rules)
    assert b.policy.offer_capacity("offer-9") == 1 and b.policy.offer_capacity("offer-1") is None


# --- hosts ----------------------------------------------------------------------------------

def test_host_decline_frees_the_slot_and_promotes():
    b = book(budget=FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.admit(candidate("a2"), FIVE_DAYS)
    with pytest.raises(Forbidden):
        b.host_decides("a1", "someone-else", True)
    with pytest.raises(Invalid):
        b.host_decides("a1", "h-a1", False, " ")
    facts = b.host_decides("a1", "h-a1", False, "no capacity in March")
    assert kinds(facts) == ["HostRefusal", "Approved"] and facts[1].application_id == "a2"
    with pytest.raises(Conflict):
        b.host_decides("a1", "h-a1", True)


# --- panel: conflicts, scoring, second assessor, rounds -----------------------------------

ALL_TENS = {c: 10 for c in domain.DEFAULT_CRITERIA}


def scores(value: int) -> dict[str, int]:
    return {c: value for c in domain.DEFAULT_CRITERIA}


def panel_book(budget: int, **settings) -> CallBook:
    b = book("panel", budget)
    if settings:
        b.change_rule_set("pm", None, **settings)
    return b


def assess(b: CallBook, app_id: str, value: int, who: str = "ann") -> list:
    b.claim(app_id, Assessor(who, "org-assessors"))
    return b.score(app_id, Assessor(who, "org-assessors"), scores(value), "ok")


def test_conflict_of_interest_is_refused():
    b = panel_book(FIVE_DAYS)
    assert kinds(b.admit(candidate("a1"), FIVE_DAYS)) == ["Checked", "Queued"]
    for org in ("v-a1", "h-a1"):
        with pytest.raises(Forbidden, match="conflict of interest"):
            b.claim("a1", Assessor("bob", org))
    b.declare_conflict("a1", Assessor("carol", "org-x"), "my cousin runs the host")
    with pytest.raises(Forbidden, match="declared"):
        b.claim("a1", Assessor("carol", "org-x"))
    assert b.queue_for(Assessor("carol", "org-x")) == [] and b.queue_for(Assessor("bob", "v-a1")) == []
    assert [e.application_id for e in b.queue_for(Assessor("dan", "org-y"))] == ["a1"]


def test_an_owner_of_the_visitor_or_the_host_may_not_claim_score_or_override():
    b = panel_book(FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    for owned in ("v-a1", "h-a1"):  # his token names no organisation: his enrolment says he owns one
        owner = Assessor("olaf", None, frozenset({"org-other", owned}))
        with pytest.raises(Forbidden, match="conflict of interest") as refused:
            b.claim("a1", owner)
        assert refused.value.errors[0]["rule"] == "conflict_of_interest"
        assert b.queue_for(owner) == []
        with pytest.raises(Forbidden, match="conflict of interest"):
            b.override("a1", "rejected", "my competitor", owner)
    b.claim("a1", Assessor("olaf", None, frozenset({"org-other"})))
    with pytest.raises(Forbidden, match="conflict of interest"):  # he enrolled the host after claiming
        b.score("a1", Assessor("olaf", None, frozenset({"h-a1"})), ALL_TENS, "")
    assert b.entry("a1").assessments == [] and b.entry("a1").status == "queued"


def test_scores_are_weighted_and_checked():
    b = panel_book(FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    with pytest.raises(Conflict):
        b.score("a1", Assessor("ann"), ALL_TENS, "")
    b.claim("a1", Assessor("ann"))
    with pytest.raises(Invalid):
        b.score("a1", Assessor("ann"), {"relevance_to_purposes": 10}, "")
    mixed = {"relevance_to_purposes": 10, "expected_impact": 0, "quality_of_plan": 10, "interregional_value": 0}
    (scored,) = b.score("a1", Assessor("ann"), mixed, "half")
    assert scored.score == 50.0 and scored.final_score == 50.0 and b.entry("a1").status == "scored"


def test_second_assessor_when_the_call_says_so_and_a_third_on_a_score_gap():
    b = panel_book(FIVE_DAYS, second_assessor=True, score_gap=15)
    b.admit(candidate("a1"), FIVE_DAYS)
    assert assess(b, "a1", 9)[0].final_score is None
    with pytest.raises(Conflict):  # same assessor twice
        b.claim("a1", Assessor("ann", "org-assessors"))
    assert assess(b, "a1", 5, who="ben")[0].final_score is None  # 90 vs 50: gap above 15
    assert b.entry("a1").status == "queued"
    (third,) = assess(b, "a1", 7, who="cid")
    assert third.final_score == 70.0 and b.entry("a1").status == "scored"


def test_round_approves_as_far_as_the_envelope_allows_and_waitlists_the_rest():
    b = panel_book(2 * FIVE_DAYS, threshold=60)
    for app_id, value in (("a1", 7), ("a2", 9), ("a3", 8), ("a4", 4)):
        b.admit(candidate(app_id), FIVE_DAYS)
        assess(b, app_id, value)
    decided = {f.application_id: type(f).__name__ for f in b.run_round()}
    assert decided == {"a2": "Approved", "a3": "Approved", "a1": "Waitlisted", "a4": "Rejected"}
    assert b.envelope_left_cents == 0
    # a later release promotes the best waitlisted
    b.host_decides("a2", "h-a2", False, "closed that week")
    assert b.entry("a1").status == "approved"


def test_appeal_once_reassessed_by_a_different_assessor():
    b = panel_book(2 * FIVE_DAYS, threshold=60)
    b.admit(candidate("a1"), FIVE_DAYS)
    assess(b, "a1", 4)
    b.run_round()
    with pytest.raises(Forbidden):
        b.appeal("a1", "h-a1", "not the visitor")
    assert kinds(b.appeal("a1", "v-a1", "the plan was misread")) == ["Appealed"]
    with pytest.raises(Conflict, match="different assessor"):
        b.claim("a1", Assessor("ann", "org-assessors"))
    facts = assess(b, "a1", 8, who="ben")
    assert kinds(facts) == ["Scored", "Approved"] and facts[0].appeal
    b.override("a1", "rejected", "fraud found", PM)
    with pytest.raises(Conflict, match="once"):
        b.appeal("a1", "v-a1", "again")


def test_override_needs_a_justification_and_respects_the_envelope():
    b = panel_book(FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.admit(candidate("a2"), FIVE_DAYS)
    with pytest.raises(Invalid):
        b.override("a1", "approved", "  ", PM)
    (approved,) = b.override("a1", "approved", "strategic for the partnership", PM)
    assert approved.overridden_by == "pm" and approved.justification == "strategic for the partnership"
    with pytest.raises(Conflict):
        b.override("a2", "approved", "also strategic", PM)
    facts = b.override("a1", "rejected", "host is a shell company", PM)
    assert kinds(facts) == ["Rejected"] and b.envelope_left_cents == FIVE_DAYS


def test_an_approval_reserves_exactly_the_lump_sum_it_was_given():
    b = book(budget=10 * FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    assert b.entries["a1"].reserved_cents == FIVE_DAYS and b.envelope_left_cents == 9 * FIVE_DAYS


def test_an_application_without_a_lump_sum_by_rule_is_rejected_with_the_reason():
    checked, rejected = book().admit(candidate("a1"), LumpSumError("unknown city 'Atlantis' in country 'FR'"))
    assert not checked.eligible and isinstance(rejected, domain.Rejected)
    assert checked.outcomes[-1]["rule"] == "lump_sum" and "Atlantis" in rejected.reasons[-1]


def test_withdrawal_releases_and_promotes():
    b = book(budget=FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.admit(candidate("a2"), FIVE_DAYS)
    assert [f.application_id for f in b.withdrawn("a1")] == ["a2"]
    assert b.withdrawn("a1") == []


def test_d_a_cancelled_application_frees_its_reservation_and_is_never_promoted():
    """Issue 13 (d): application.cancelled releases the place and closes the entry."""
    b = book(budget=FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.admit(candidate("a2"), FIVE_DAYS)
    b.admit(candidate("a3"), FIVE_DAYS)
    assert b.cancelled("a3") == []  # waitlisted, cancelled: it leaves the waitlist
    assert [f.application_id for f in b.cancelled("a1")] == ["a2"]  # approved, cancelled: a2 moves up
    assert b.entries["a1"].status == b.entries["a3"].status == "cancelled" and b.envelope_left_cents == 0
    assert b.cancelled("a1") == [] and b.waiting == 0


def test_c_a_top_up_promotes_the_waitlist_in_order():
    """Issue 13 (c): budget.topped_up grows the envelope and moves the waitlist."""
    b = book(budget=FIVE_DAYS)
    for app in ("a1", "a2", "a3"):
        b.admit(candidate(app), FIVE_DAYS)
    promoted = b.topped_up(FIVE_DAYS + FIVE_DAYS // 2)
    assert [f.application_id for f in promoted] == ["a2"] and b.envelope_left_cents == FIVE_DAYS // 2
    assert b.budget_cents == 2 * FIVE_DAYS + FIVE_DAYS // 2 and b.entries["a3"].status == "waitlisted"


def test_c_a_reduced_commitment_returns_its_part_and_promotes():
    """Issue 13 (c): commitment.reduced (a shorter exchange) returns that part of the reservation."""
    b = book(budget=FIVE_DAYS + FIVE_DAYS // 2)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.admit(candidate("a2"), FIVE_DAYS)
    b.host_decides("a1", "h-a1", True)
    assert [f.application_id for f in b.commitment_reduced("a1", FIVE_DAYS // 2)] == ["a2"]
    assert b.entries["a1"].reserved_cents == FIVE_DAYS - FIVE_DAYS // 2 and b.envelope_left_cents == 0
    assert b.commitment_reduced("unknown", 1) == []


def test_g_the_calls_last_exchange_day_reaches_the_dates_rule():
    """Issue 13 (g): CallPublished.exchanges_end_on bounds the exchanges assessment approves."""
    b = CallBook.open("call-1", "p-1", date(2026, 1, 1), date(2026, 12, 31), 10 * FIVE_DAYS, "automatic",
                      ["FR", "DE"], "default", exchanges_end_on=date(2026, 3, 5))
    checked, rejected = b.admit(candidate("a1"), FIVE_DAYS)  # ends 2026-03-06
    [failed] = [o for o in checked.outcomes if not o["passed"]]
    assert failed["rule"] == "dates_inside_call" and "2026-03-05" in failed["reason"]
    assert isinstance(rejected, domain.Rejected)


def test_g_the_capacity_the_host_published_limits_its_offer():
    """Issue 13 (g): an offer's published capacity reaches the host_capacity rule."""
    b = book()
    b.admit(candidate("a1", offer_id="offer-7", offer_capacity=1), FIVE_DAYS)
    checked, rejected = b.admit(candidate("a2", offer_id="offer-7", offer_capacity=1), FIVE_DAYS)
    [failed] = [o for o in checked.outcomes if not o["passed"]]
    assert failed["rule"] == "host_capacity" and "1 of 1" in failed["reason"]
    checked, _ = b.admit(candidate("a3", offer_id="offer-8", offer_capacity=1), FIVE_DAYS)
    assert checked.eligible


def test_g_an_offer_capacity_counts_the_places_held_at_once_not_in_total():
    """An offer of N places receives N visitors at the same time (offer.published), over its window:
    an exchange on other dates takes a place again; one overlapping the places held is refused;
    a place held on the offer in another call counts too (the places are the host's)."""
    b = book()
    on_offer = dict(offer_id="offer-7", offer_capacity=1)
    b.admit(candidate("a1", **on_offer), FIVE_DAYS)  # 2026-03-02..06

    def capacity(app_id: str, start: date, end: date, **kw) -> dict:
        checked = b.admit(candidate(app_id, planned_start=start, planned_end=end, **on_offer), FIVE_DAYS, **kw)[0]
        return next(o for o in checked.outcomes if o["rule"] == "host_capacity")

    week_after = capacity("a2", date(2026, 3, 9), date(2026, 3, 13))
    assert week_after["passed"] and "0 of 1 places taken at once" in week_after["reason"]
    assert b.entry("a2").status == "approved"
    overlapping = capacity("a3", date(2026, 3, 5), date(2026, 3, 9))  # a day with a1, a day with a2
    assert not overlapping["passed"] and "2 of 1 places taken at once (a1, a2)" in overlapping["reason"]
    assert not capacity("a4", date(2026, 2, 26), date(2026, 3, 2))["passed"]  # a1's first day is in common
    elsewhere = (("other-call-app", date(2026, 3, 16), date(2026, 3, 20)),)
    in_another_call = capacity("a5", date(2026, 3, 18), date(2026, 3, 24), offer_elsewhere=elsewhere)
    assert not in_another_call["passed"] and "other-call-app" in in_another_call["reason"]
    assert capacity("a6", date(2026, 3, 23), date(2026, 3, 27), offer_elsewhere=elsewhere)["passed"]


def test_money_ordered_for_payment_stays_spent_when_the_exchange_is_withdrawn():
    b = book(budget=FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.host_decides("a1", "h-a1", True)
    b.payment_ordered("a1", 700)
    b.withdrawn("a1")  # grants releases all but the ordered pre-financing: so does assessment
    assert (b.entries["a1"].reserved_cents, b.envelope_left_cents) == (700, FIVE_DAYS - 700)
    b.payment_ordered("a1", 300)  # an order that arrives after the withdrawal: taken back
    assert (b.entries["a1"].reserved_cents, b.envelope_left_cents) == (1000, FIVE_DAYS - 1000)


def test_duplicate_submission_changes_nothing():
    b = book()
    b.admit(candidate("a1"), FIVE_DAYS)
    left = b.envelope_left_cents
    assert b.admit(candidate("a1"), FIVE_DAYS) == [] and b.envelope_left_cents == left


def test_an_overridden_application_can_no_longer_be_scored():
    b = panel_book(FIVE_DAYS)
    b.admit(candidate("a1"), FIVE_DAYS)
    b.claim("a1", Assessor("ann"))
    b.override("a1", "approved", "urgent strategic visit", PM)
    assert b.entry("a1").claims == []
    with pytest.raises(Conflict):
        b.score("a1", Assessor("ann"), ALL_TENS, "")
    assert b.entry("a1").status == "approved"


def test_overlap_with_an_exchange_in_another_call_fails_alone():
    elsewhere = (("other-call-app", date(2026, 3, 6), date(2026, 3, 12)),)
    checked, _ = book().admit(candidate("a1"), FIVE_DAYS, elsewhere)
    failed = [o for o in checked.outcomes if not o["passed"]]
    assert [o["rule"] for o in failed] == ["no_overlapping_exchange"] and "other-call-app" in failed[0]["reason"]
    checked, _ = book().admit(candidate("a2"), FIVE_DAYS, (("x", date(2026, 4, 1), date(2026, 4, 3)),))
    assert checked.eligible


def test_g_a_call_changed_before_it_opened_moves_dates_budget_and_its_rules_once():
    b = book(budget=1_000_000)
    b.topped_up(200_000)
    custom = [r if r["rule"] != "duration" else {"rule": "duration", "params": {"min_working_days": 4}}
              for r in b.policy.rules]
    b.change_rule_set("pm", custom)  # a manager's own rule stays through the call's change
    facts = b.call_changed(2, date(2026, 2, 1), date(2026, 11, 30), -300_000, ["FR", "DE"], date(2026, 12, 15), "mp")
    assert kinds(facts) == ["RuleSetPublished"] and b.policy.label == "default-v1@3"
    params = {r["rule"]: r["params"] for r in b.policy.rules}
    assert params["eligible_countries"] == {"countries": ["FR", "DE"]}
    assert params["dates_inside_call"] == {"exchanges_end_by": "2026-12-15"}
    assert params["duration"] == {"min_working_days": 4}
    assert (b.opens_on, b.closes_on, b.revision) == (date(2026, 2, 1), date(2026, 11, 30), 2)
    assert (b.budget_cents, b.envelope_left_cents) == (900_000, 900_000)  # the top-up stays
    # redelivered, or older than what is folded: nothing
    assert b.call_changed(2, OPENS, CLOSES, 500_000, ["IT"], None, "mp") == []
    assert (b.budget_cents, b.policy.label) == (900_000, "default-v1@3")
    # a change of the budget alone publishes no rule set; the end day cleared goes back to closes_on
    p = b.policy  # the version's panel settings travel with it, unchanged by the call's change
    assert b.call_changed(3, date(2026, 2, 1), date(2026, 11, 30), 100_000, ["FR", "DE"], None, "mp") == \
        [domain.RuleSetPublished("default-v1@4", b.policy.rules, "mp", dict(p.criteria), p.second_assessor,
                                 p.score_gap, p.threshold)]
    assert "exchanges_end_by" not in {r["rule"]: r["params"] for r in b.policy.rules}["dates_inside_call"]
    assert b.call_changed(4, date(2026, 2, 1), date(2026, 11, 30), 100_000, ["FR", "DE"], None, "mp") == []
    assert b.budget_cents == 1_100_000

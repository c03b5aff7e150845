"""The programme's rules on enrolment and submission (pure, no I/O)."""

from datetime import date

import pytest

from cx_shared.duration import last_day_within_one_month
from cx_shared.errors import Invalid
from applications import rules
from applications.rules import Context, Proposal, working_days


# --- working days in the host country ------------------------------------------------------

def test_easter_week_2027_counts_good_friday_as_a_holiday_in_germany_not_in_france():
    monday, friday = date(2027, 3, 22), date(2027, 3, 26)  # Good Friday is 26 March 2027
    assert working_days(monday, friday, "DE") == 4
    assert working_days(monday, friday, "FR") == 5


def test_bastille_day_week_2027_is_shorter_in_france_only():
    monday, friday = date(2027, 7, 12), date(2027, 7, 16)  # 14 July 2027 is a Wednesday
    assert working_days(monday, friday, "FR") == 4
    assert working_days(monday, friday, "DE") == 5


def test_christmas_week_2026_in_italy_and_germany():
    monday, friday = date(2026, 12, 21), date(2026, 12, 25)
    assert working_days(monday, friday, "IT") == 4
    assert working_days(monday, friday, "DE") == 4


def test_weekends_do_not_count():
    assert working_days(date(2026, 6, 6), date(2026, 6, 7), "NL") == 0  # a Saturday and a Sunday


def test_a_country_the_library_does_not_cover_counts_weekdays():
    assert working_days(date(2026, 6, 1), date(2026, 6, 5), "AQ") == 5


def test_three_working_days_depend_on_the_host_country():
    start, end = date(2027, 3, 24), date(2027, 3, 26)  # Wednesday to Good Friday
    assert rules.duration_violations(start, end, "FR") == []
    [refused] = rules.duration_violations(start, end, "DE")
    assert (refused["field"], refused["rule"]) == ("planned_end", "min_working_days")


@pytest.mark.parametrize(("start", "latest"), [(date(2026, 3, 10), date(2026, 4, 9)),
                                               (date(2026, 12, 15), date(2027, 1, 14)),
                                               (date(2026, 1, 31), date(2026, 2, 27))])
def test_at_most_one_month(start, latest):
    assert last_day_within_one_month(start) == latest
    assert not [v for v in rules.duration_violations(start, latest, "BE") if v["rule"] == "max_one_month"]
    [too_long] = [v for v in rules.duration_violations(start, date.fromordinal(latest.toordinal() + 1), "BE")
                  if v["rule"] == "max_one_month"]
    assert too_long["field"] == "planned_end"


def test_an_end_before_the_start_is_refused():
    [refused] = rules.duration_violations(date(2026, 6, 10), date(2026, 6, 9), "BE")
    assert refused["rule"] == "end_after_start"


# --- enrolment -----------------------------------------------------------------------------

ORG = {"legal_name": "Cluster", "country": "FR", "city": "Lyon", "organisation_type": "cluster_organisation",
       "subtype": None, "cluster_name": None, "ecosystems": ["digital"], "roles": ["visitor"],
       "contact": {"name": "A", "email": "a@example.org", "language": "fr"}}


def rule_failures(found):
    return {(v["field"], v["rule"]) for v in found}


def test_a_valid_organisation_passes():
    assert rules.organisation_violations(ORG) == []


@pytest.mark.parametrize(("change", "failure"), [
    ({"country": "XX"}, ("country", "iso_3166")),
    ({"country": "fr"}, ("country", "iso_3166")),
    ({"organisation_type": "sme"}, ("cluster_name", "sme_cluster")),
    ({"organisation_type": "sme", "cluster_name": "  "}, ("cluster_name", "sme_cluster")),
    ({"organisation_type": "scaling_up_support_organisation"}, ("subtype", "support_subtype")),
    ({"organisation_type": "scaling_up_support_organisation", "subtype": "bakery"}, ("subtype", "support_subtype")),
    ({"subtype": "fab_lab"}, ("subtype", "support_subtype")),
    ({"roles": []}, ("roles", "participant_role")),
    ({"contact": {**ORG["contact"], "language": "xx"}}, ("contact.language", "language")),
    ({"city": "Atlantis"}, ("city", "known_city")),
    ({"country": "DE"}, ("city", "known_city")),  # Lyon is not in Germany
])
def test_enrolment_rules(change, failure):
    assert failure in rule_failures(rules.organisation_violations({**ORG, **change}))


def test_kosovo_and_a_support_organisation_with_its_subtype_are_fine():
    org = {**ORG, "country": "XK", "city": "Pristina", "organisation_type": "scaling_up_support_organisation",
           "subtype": "fab_lab"}
    assert rules.organisation_violations(org) == []


@pytest.mark.parametrize(("city", "country"), [("München", "DE"), ("Munich", "DE"), ("KRAKÓW", "PL"),
                                               ("Bruxelles", "BE"), ("Sankt Pölten", "AT")])
def test_cities_are_known_by_their_own_and_their_english_names_whatever_the_accents(city, country):
    assert rules.city_violations(city, country) == []


def test_an_unknown_city_says_what_to_give_instead():
    [refused] = rules.city_violations("Lyonville", "FR")
    assert refused["field"] == "city" and "Lyonville" in refused["message"] and "nearest" in refused["message"]


def test_refuse_lists_every_violation_in_one_422():
    with pytest.raises(Invalid) as refused:
        rules.refuse(rules.organisation_violations({**ORG, "country": "XX", "organisation_type": "sme"}))
    assert {e["field"] for e in refused.value.errors} == {"country", "cluster_name"}


# --- submission ----------------------------------------------------------------------------

TODAY = date(2026, 5, 4)
CALL = {"call_id": "c", "opens_on": "2026-05-01", "closes_on": "2026-09-30", "exchanges_end_on": None}
VISITOR = {"organisation_id": "v", "country": "FR", "roles": ["visitor"]}
HOST = {"organisation_id": "h", "country": "DE", "roles": ["host"]}
OFFER = {"offer_id": "o", "host_id": "h", "window_start": "2026-06-01", "window_end": "2026-06-30", "capacity": 1}
GOOD = Proposal("c", "v", "h", "o", date(2026, 6, 8), date(2026, 6, 12))


def check(proposal=GOOD, **context):
    ctx = {"today": TODAY, "call": CALL, "visitor": VISITOR, "host": HOST, "offer": OFFER, **context}
    return rule_failures(rules.submission_violations(proposal, Context(**ctx)))


def moved(start, end):
    return Proposal("c", "v", "h", "o", start, end)


def test_a_good_proposal_passes():
    assert check() == set()


@pytest.mark.parametrize(("context", "failure"), [
    ({"call": None}, ("call_id", "exists")),
    ({"today": date(2026, 10, 1)}, ("call_id", "call_open")),
    ({"today": date(2026, 4, 30)}, ("call_id", "call_open")),
    ({"visitor": None}, ("visitor_id", "enrolled")),
    ({"host": {**HOST, "roles": ["visitor"]}}, ("host_id", "host_role")),
    ({"visitor": {**VISITOR, "roles": ["host"]}}, ("visitor_id", "visitor_role")),
    ({"host": {**HOST, "country": "FR"}}, ("host_id", "transnational")),
    ({"offer": None}, ("offer_id", "exists")),
    ({"offer": {**OFFER, "host_id": "someone-else"}}, ("offer_id", "offer_of_host")),
    ({"offer_bookings": 1}, ("offer_id", "host_capacity")),
    ({"visitor_clashes": ("app-1",)}, ("planned_start", "visitor_overlap")),
])
def test_submission_rules_on_the_parties(context, failure):
    assert failure in check(**context)


@pytest.mark.parametrize(("proposal", "failure"), [
    (moved(date(2026, 5, 4), date(2026, 5, 8)), ("planned_start", "future")),
    (moved(date(2026, 6, 8), date(2026, 7, 2)), ("planned_end", "within_offer")),
    (moved(date(2026, 5, 25), date(2026, 6, 3)), ("planned_start", "within_offer")),
    (moved(date(2026, 6, 6), date(2026, 6, 7)), ("planned_end", "min_working_days")),
    (moved(date(2026, 6, 12), date(2026, 6, 11)), ("planned_end", "end_after_start")),
])
def test_submission_rules_on_the_dates(proposal, failure):
    assert failure in check(proposal)


def test_the_exchange_takes_place_within_the_call():
    late = Proposal("c", "v", "h", None, date(2026, 9, 28), date(2026, 10, 2))
    assert ("planned_end", "within_call") in check(late, offer=None)
    assert check(late, offer=None, call={**CALL, "exchanges_end_on": "2026-12-31"}) == set()


def test_a_visit_without_an_offer_has_no_offer_rules():
    assert check(Proposal("c", "v", "h", None, date(2026, 7, 6), date(2026, 7, 10)), offer=None) == set()


def test_a_second_place_on_an_offer_of_capacity_two_is_fine():
    assert check(offer={**OFFER, "capacity": 2}, offer_bookings=1) == set()


# --- the consortium rule ---------------------------------------------------------------------

def member(name: str, country: str, region: str = "more_developed") -> dict:
    return {"legal_name": name, "country": country, "region_category": region}


def test_a_consortium_of_three_entities_in_three_countries_with_a_cohesion_region_passes():
    members = [member("A", "FR"), member("B", "DE"), member("C", "XK", "transition")]
    assert rules.partnership_violations({"members": members}) == []


@pytest.mark.parametrize(("members", "expected"), [
    ([member("A", "FR"), member("B", "DE", "less_developed")], ("members", "consortium_legal_entities")),
    ([member("A", "FR"), member("a ", "DE"), member("C", "PL", "less_developed")],
     ("members", "consortium_legal_entities")),
    ([member("A", "FR"), member("B", "DE"), member("C", "DE", "transition")], ("members", "consortium_countries")),
    ([member("A", "FR"), member("B", "DE"), member("C", "CH", "transition")], ("members[2].country", "eligible_country")),
    ([member("A", "FR"), member("B", "DE"), member("C", "PL")], ("members", "consortium_cohesion_region")),
])
def test_the_consortium_rule_names_what_is_missing(members, expected):
    found = {(v["field"], v["rule"]) for v in rules.partnership_violations({"members": members})}
    assert expected in found


def test_issue_13g_a_call_changed_before_it_opens_keeps_its_rules_and_opens_no_earlier_than_today():
    today = date(2026, 11, 23)
    call = {"eligible_countries": ["FR", "DE"], "opens_on": date(2026, 12, 1), "closes_on": date(2027, 3, 1),
            "exchanges_end_on": None}
    assert rules.call_change_violations(call, today) == []
    assert rules.call_change_violations({**call, "opens_on": today}, today) == []  # opens today: still allowed
    broken = {**call, "opens_on": date(2026, 11, 22), "closes_on": date(2026, 11, 1), "eligible_countries": ["XX"]}
    assert {(v["field"], v["rule"]) for v in rules.call_change_violations(broken, today)} == {
        ("opens_on", "not_before_today"), ("closes_on", "closes_after_opens"), ("eligible_countries", "iso_3166")}

"""The programme's rules for enrolment, calls, offers and submissions (pure, no I/O).

Each rule that fails yields a violation naming the request field, the rule and a reason a
person can act on; the API refuses the request with all of them (422) and stores nothing.
Working days use the maintained `holidays` library for the host country's public holidays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import holidays
import pycountry

from cx_shared.duration import MIN_WORKING_DAYS, last_day_within_one_month
from cx_shared.errors import Invalid
from cx_shared.geography import UnknownCity, locate
from cx_shared.vocabulary import (DEFAULT_ELIGIBLE_COUNTRIES, LANGUAGES, OrganisationType, RegionCategory,
                                  SupportOrganisationSubtype)

from applications.domain import CALL_CANCELLED, CALL_CLOSED, OFFER_WITHDRAWN

KOSOVO = "XK"  # user-assigned ISO 3166 code, not in the standard's list but a COSME participant
MAX_SPAN_YEARS = 2  # working days are counted over an exchange (a month), never more

Violation = dict[str, str]


def violation(field: str, rule: str, message: str) -> Violation:
    return {"field": field, "rule": rule, "message": message}


def refuse(violations: list[Violation]) -> None:
    """Raise one 422 problem listing every violation, if there is any."""
    if violations:
        raise Invalid("; ".join(f"{v['field']}: {v['message']}" for v in violations), errors=violations)


def is_country(code: str) -> bool:
    return code == KOSOVO or (len(code) == 2 and code.isupper() and pycountry.countries.get(alpha_2=code) is not None)


def country_violations(field: str, codes: Iterable[str]) -> list[Violation]:
    return [violation(field, "iso_3166", f"'{c}' is not an ISO 3166-1 alpha-2 country code")
            for c in codes if not is_country(c)]


# --- working days and duration -------------------------------------------------------------

@lru_cache(maxsize=256)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except NotImplementedError:  # a country the library does not cover: weekends only
        return frozenset()


def working_days(start: date, end: date, country: str) -> int:
    """Working days from start to end inclusive in the host country: weekends and its
    national public holidays do not count. Arithmetic on whole weeks, so the cost does not
    grow with the span; only the years the span touches are asked for their holidays, and
    a span longer than MAX_SPAN_YEARS is refused (a date far off is a mistake, not an exchange)."""
    if end < start:
        return 0
    if end.year - start.year > MAX_SPAN_YEARS:
        raise ValueError(f"{start}..{end} spans more than {MAX_SPAN_YEARS} years")
    weeks, rest = divmod((end - start).days + 1, 7)
    weekdays = weeks * 5 + sum(1 for i in range(rest) if (start.weekday() + i) % 7 < 5)
    off = {day for year in range(start.year, end.year + 1) for day in _public_holidays(country, year)
           if start <= day <= end and day.weekday() < 5}
    return weekdays - len(off)


def duration_violations(start: date, end: date, host_country: str) -> list[Violation]:
    if end < start:
        return [violation("planned_end", "end_after_start", f"the end ({end}) is before the start ({start})")]
    latest = last_day_within_one_month(start)
    if end > latest:  # too long: no need to count its days
        return [violation("planned_end", "max_one_month",
                          f"an exchange lasts at most one month: starting {start} it must end by {latest}")]
    found = []
    days = working_days(start, end, host_country)
    if days < MIN_WORKING_DAYS:
        found.append(violation("planned_end", "min_working_days",
                               f"an exchange lasts at least {MIN_WORKING_DAYS} working days in the host country "
                               f"({host_country}, weekends and public holidays excluded); {start}..{end} has {days}"))
    return found


# --- enrolment, partnerships, calls, offers ------------------------------------------------

def organisation_violations(org: Mapping[str, Any]) -> list[Violation]:
    found = country_violations("country", [org["country"]]) or city_violations(org["city"], org["country"])
    kind = OrganisationType(org["organisation_type"])
    subtype, cluster = org.get("subtype"), (org.get("cluster_name") or "").strip()
    if kind is OrganisationType.SCALING_UP_SUPPORT_ORGANISATION:
        if subtype not in set(SupportOrganisationSubtype):
            allowed = ", ".join(SupportOrganisationSubtype)
            found.append(violation("subtype", "support_subtype",
                                   f"a scaling-up support organisation names its subtype, one of: {allowed}"))
    elif subtype:
        found.append(violation("subtype", "support_subtype", "only scaling-up support organisations have a subtype"))
    if kind is OrganisationType.SME and not cluster:
        found.append(violation("cluster_name", "sme_cluster", "an SME takes part as a member of a cluster: name it"))
    if not set(org["roles"]) <= {"visitor", "host"} or not org["roles"]:
        found.append(violation("roles", "participant_role", "an organisation enrols as visitor, host or both"))
    if not org.get("ecosystems"):
        found.append(violation("ecosystems", "ecosystem", "name at least one of the 14 industrial ecosystems"))
    language = org["contact"]["language"]
    if language not in LANGUAGES:
        found.append(violation("contact.language", "language", f"'{language}' is not a supported language"))
    return found


def city_violations(city: str, country: str) -> list[Violation]:
    """The city must be in the offline gazetteer grants computes the travel distance from: an
    unknown city is refused at enrolment, not found out when the grant is due."""
    try:
        locate(city, country)
    except UnknownCity as unknown:
        return [violation("city", "known_city", str(unknown))]
    return []


# The consortium rule (domain.md): at least 3 legal entities in at least 3 different eligible
# countries, one of them in a less developed or in transition region.
CONSORTIUM_MIN_ENTITIES = CONSORTIUM_MIN_COUNTRIES = 3
COHESION_REGIONS = frozenset({RegionCategory.LESS_DEVELOPED, RegionCategory.TRANSITION})


def partnership_violations(p: Mapping[str, Any]) -> list[Violation]:
    """The consortium rule over the partnership's members (its legal entities)."""
    members = p["members"]
    found = [violation(f"members[{i}].country", "eligible_country",
                       f"'{m['country']}' is not a country eligible for the programme (EU or COSME participant)")
             for i, m in enumerate(members) if m["country"] not in DEFAULT_ELIGIBLE_COUNTRIES]
    entities = {" ".join(m["legal_name"].casefold().split()) for m in members}
    if len(entities) < CONSORTIUM_MIN_ENTITIES:
        found.append(violation("members", "consortium_legal_entities",
                               f"a consortium has at least {CONSORTIUM_MIN_ENTITIES} different legal entities, "
                               f"not {len(entities)}"))
    countries = {m["country"] for m in members if m["country"] in DEFAULT_ELIGIBLE_COUNTRIES}
    if len(countries) < CONSORTIUM_MIN_COUNTRIES:
        found.append(violation("members", "consortium_countries",
                               f"a consortium's members are in at least {CONSORTIUM_MIN_COUNTRIES} different "
                               f"eligible countries, not {len(countries)}"))
    if not any(m["region_category"] in COHESION_REGIONS for m in members):
        found.append(violation("members", "consortium_cohesion_region",
                               "a consortium has a member in a less developed or in transition region"))
    return found


def call_violations(call: Mapping[str, Any]) -> list[Violation]:
    found = country_violations("eligible_countries", call["eligible_countries"])
    if call["closes_on"] < call["opens_on"]:
        found.append(violation("closes_on", "closes_after_opens", "a call closes on or after the day it opens"))
    end = call.get("exchanges_end_on")
    if end is not None and end < call["opens_on"]:
        found.append(violation("exchanges_end_on", "after_opening", "exchanges cannot end before the call opens"))
    return found


def call_change_violations(call: Mapping[str, Any], today: date) -> list[Violation]:
    """A call after a change made before it opened: its own rules, and it does not open in the past."""
    found = call_violations(call)
    if call["opens_on"] < today:
        found.append(violation("opens_on", "not_before_today",
                               f"a call changed before it opens cannot open in the past (before {today})"))
    return found


def offer_violations(offer: Mapping[str, Any], host: Mapping[str, Any] | None, today: date) -> list[Violation]:
    found = []
    if host is None:
        found.append(violation("host_id", "enrolled", f"no enrolled organisation {offer['host_id']}"))
    elif "host" not in host["roles"]:
        found.append(violation("host_id", "host_role", "the organisation is not enrolled as a host"))
    if offer["window_end"] < offer["window_start"]:
        found.append(violation("window_end", "end_after_start", "the window ends before it starts"))
    elif offer["window_end"] < today:
        found.append(violation("window_end", "future", "the window is over"))
    if offer["language"] not in LANGUAGES:
        found.append(violation("language", "language", f"'{offer['language']}' is not a supported language"))
    return found


# --- submission ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Proposal:
    """What a visitor asks for: a visit to a host (through one of its offers, or not) in a call."""

    call_id: str
    visitor_id: str
    host_id: str
    offer_id: str | None
    planned_start: date
    planned_end: date


@dataclass(frozen=True)
class Context:
    """What the rules need to know about the world, read before deciding."""

    today: date
    call: Mapping[str, Any] | None
    visitor: Mapping[str, Any] | None
    host: Mapping[str, Any] | None
    offer: Mapping[str, Any] | None = None
    offer_bookings: int = 0  # active exchanges through the offer overlapping the proposed dates
    visitor_clashes: tuple[str, ...] = ()  # the visitor's active exchanges overlapping them


def submission_violations(p: Proposal, ctx: Context) -> list[Violation]:
    found = _party_violations(p, ctx)
    if found:  # the date rules need an existing call, visitor and host
        return found
    found += _date_violations(p, ctx)
    if not any(v["field"] in ("planned_start", "planned_end") for v in found):
        found += _calendar_violations(p, ctx)
    return found


def _party_violations(p: Proposal, ctx: Context) -> list[Violation]:
    found = []
    if ctx.call is None:
        found.append(violation("call_id", "exists", f"no call {p.call_id}"))
    elif not (date.fromisoformat(ctx.call["opens_on"]) <= ctx.today <= date.fromisoformat(ctx.call["closes_on"])):
        found.append(violation("call_id", "call_open", f"the call is open from {ctx.call['opens_on']} to "
                                                        f"{ctx.call['closes_on']}, not on {ctx.today}"))
    elif ctx.call.get("status") in (CALL_CLOSED, CALL_CANCELLED):
        found.append(violation("call_id", "call_open", f"the partnership {ctx.call['status']} this call"))
    for field, org, role in (("visitor_id", ctx.visitor, "visitor"), ("host_id", ctx.host, "host")):
        if org is None:
            found.append(violation(field, "enrolled", f"no enrolled organisation {getattr(p, field)}"))
        elif role not in org["roles"]:
            found.append(violation(field, f"{role}_role", f"the organisation is not enrolled as a {role}"))
    if ctx.visitor and ctx.host and ctx.visitor["country"] == ctx.host["country"]:
        found.append(violation("host_id", "transnational", f"visitor and host are both in {ctx.host['country']}: "
                                                            "an exchange is transnational"))
    if p.offer_id is not None:
        if ctx.offer is None:
            found.append(violation("offer_id", "exists", f"no offer {p.offer_id}"))
        elif ctx.offer["host_id"] != p.host_id:
            found.append(violation("offer_id", "offer_of_host", "the offer is not the host's"))
        elif ctx.offer.get("status") == OFFER_WITHDRAWN:
            found.append(violation("offer_id", "offer_withdrawn", "the host withdrew this offer: choose another"))
    return found


def _date_violations(p: Proposal, ctx: Context) -> list[Violation]:
    found = []
    if p.planned_start <= ctx.today:
        found.append(violation("planned_start", "future", f"the exchange must start after today ({ctx.today})"))
    call_start = date.fromisoformat(ctx.call["opens_on"])
    call_end = date.fromisoformat(ctx.call.get("exchanges_end_on") or ctx.call["closes_on"])
    if p.planned_start < call_start or p.planned_end > call_end:
        found.append(violation("planned_end" if p.planned_start >= call_start else "planned_start", "within_call",
                               f"the exchange must take place within the call, {call_start} to {call_end}"))
    if ctx.offer is not None:
        start, end = date.fromisoformat(ctx.offer["window_start"]), date.fromisoformat(ctx.offer["window_end"])
        if p.planned_start < start or p.planned_end > end:
            found.append(violation("planned_end" if p.planned_start >= start else "planned_start", "within_offer",
                                   f"the host receives visitors through this offer from {start} to {end}"))
    return found + duration_violations(p.planned_start, p.planned_end, ctx.host["country"])


def _calendar_violations(p: Proposal, ctx: Context) -> list[Violation]:
    found = []
    if ctx.offer is not None and ctx.offer_bookings >= ctx.offer["capacity"]:
        found.append(violation("offer_id", "host_capacity",
                               f"the host receives at most {ctx.offer['capacity']} visitor(s) at once through this "
                               f"offer and those dates are taken"))
    if ctx.visitor_clashes:
        clashes = ", ".join(ctx.visitor_clashes)
        found.append(violation("planned_start", "visitor_overlap",
                               f"the visitor already has an exchange on those dates ({clashes})"))
    return found

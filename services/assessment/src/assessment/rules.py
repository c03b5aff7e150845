"""The eligibility rule catalogue: each rule is a pure function judging one thing.

A call's rule set is data (``[{"rule": name, "params": {...}}, ...]``) naming rules of
this catalogue, so a programme manager changes a call's rules without code, and every
outcome says which rule decided and why. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cx_shared.duration import MIN_WORKING_DAYS, last_day_within_one_month
from cx_shared.vocabulary import DEFAULT_ELIGIBLE_COUNTRIES, OrganisationType



@dataclass(frozen=True)
class Party:
    organisation_id: str
    country: str
    organisation_type: str
    cluster_name: str | None = None


@dataclass(frozen=True)
class Candidate:
    """What the rules judge: the facts of one submitted application."""

    application_id: str
    visitor: Party
    host: Party
    planned_start: date
    planned_end: date
    working_days: int
    submitted_on: date
    offer_id: str | None = None
    offer_capacity: int | None = None  # the places the host published on its offer, when known
    submitted_at: datetime | None = None  # when applications took it: its place in the call's queue


@dataclass(frozen=True)
class Context:
    """What the call and the applications already seen add to the candidate's facts."""

    opens_on: date
    closes_on: date
    # (application id, start, end) of the visitor's other live applications in this call
    visitor_exchanges: tuple[tuple[str, date, date], ...] = ()
    # places held (approved or host-accepted) on the candidate's host offer, in any call:
    # (application id, start, end); those overlapping the candidate's dates count against it
    offer_places: tuple[tuple[str, date, date], ...] = ()


@dataclass(frozen=True)
class Outcome:
    rule: str
    passed: bool
    reason: str


Rule = Callable[[Mapping[str, Any], Candidate, Context], Outcome]
RULES: dict[str, Rule] = {}


def rule(name: str):
    def register(fn):
        def judged(params, candidate, context) -> Outcome:
            passed, reason = fn(params, candidate, context)
            return Outcome(name, passed, reason)
        RULES[name] = judged
        return fn
    return register


@rule("eligible_countries")
def _countries(params, c: Candidate, ctx: Context):
    countries = set(params.get("countries") or DEFAULT_ELIGIBLE_COUNTRIES)
    outside = [f"{role} in {p.country}" for role, p in (("visitor", c.visitor), ("host", c.host))
               if p.country not in countries]
    if outside:
        return False, f"not an eligible country of this call: {', '.join(outside)}"
    return True, f"visitor ({c.visitor.country}) and host ({c.host.country}) are in eligible countries"


@rule("organisation_types")
def _types(params, c: Candidate, ctx: Context):
    allowed = set(params.get("types") or [t.value for t in OrganisationType])
    wrong = [f"{role} is {p.organisation_type}" for role, p in (("visitor", c.visitor), ("host", c.host))
             if p.organisation_type not in allowed]
    if wrong:
        return False, f"organisation type not eligible: {', '.join(wrong)}"
    return True, "visitor and host are eligible organisation types"


@rule("transnational")
def _transnational(params, c: Candidate, ctx: Context):
    if c.visitor.country == c.host.country:
        return False, f"visitor and host are both in {c.visitor.country}: the exchange must be transnational"
    return True, f"transnational: {c.visitor.country} to {c.host.country}"


@rule("sme_cluster_membership")
def _sme_cluster(params, c: Candidate, ctx: Context):
    unnamed = [role for role, p in (("visitor", c.visitor), ("host", c.host))
               if p.organisation_type == OrganisationType.SME and not (p.cluster_name or "").strip()]
    if unnamed:
        return False, f"an SME must be a member of a named cluster: {', '.join(unnamed)} names none"
    return True, "every SME names its cluster"


@rule("duration")
def _duration(params, c: Candidate, ctx: Context):
    # Working days come from the applications service (host country, public holidays excluded);
    # "up to one month" is the calendar month both services read from the shared definition.
    low = int(params.get("min_working_days", MIN_WORKING_DAYS))
    latest = last_day_within_one_month(c.planned_start)
    if c.planned_end < c.planned_start:
        return False, f"the exchange ends ({c.planned_end}) before it starts ({c.planned_start})"
    if c.working_days < low:
        return False, f"{c.working_days} working days in the host country; the exchange lasts at least {low}"
    if c.planned_end > latest:
        return False, f"the exchange lasts more than one month: starting {c.planned_start} it ends by {latest}"
    high = params.get("max_working_days")  # a cap some calls add, and rule sets stored before this one had
    if high is not None and c.working_days > int(high):
        return False, f"{c.working_days} working days in the host country; this call allows at most {high}"
    return True, f"{c.working_days} working days, ending by {latest}: at least {low} working days, at most one month"


@rule("dates_inside_call")
def _dates(params, c: Candidate, ctx: Context):
    if not ctx.opens_on <= c.submitted_on <= ctx.closes_on:
        return False, f"submitted on {c.submitted_on}, outside the call ({ctx.opens_on} to {ctx.closes_on})"
    if c.planned_start < ctx.opens_on:
        return False, f"the exchange starts ({c.planned_start}) before the call opens ({ctx.opens_on})"
    latest_end = params.get("exchanges_end_by")
    if latest_end and c.planned_end > date.fromisoformat(latest_end):
        return False, f"the exchange ends ({c.planned_end}) after the call's last exchange day ({latest_end})"
    return True, f"submitted on {c.submitted_on} while the call was open; the exchange starts after it opened"


def _during(c: Candidate, exchanges: tuple[tuple[str, date, date], ...]) -> list[str]:
    """The other exchanges whose dates overlap the candidate's (a day in common)."""
    return sorted(app_id for app_id, start, end in exchanges
                  if app_id != c.application_id and start <= c.planned_end and c.planned_start <= end)


@rule("host_capacity")
def _capacity(params, c: Candidate, ctx: Context):
    # An offer's capacity is how many visitors its host receives at once (offer.published):
    # places held on exchanges overlapping the candidate's dates count, others do not, as in
    # applications' check at submission. The rule set may set an offer's places (it overrides);
    # else the capacity the host published on its offer; unknown capacity passes.
    capacity = (params.get("offer_capacities") or {}).get(c.offer_id, c.offer_capacity) if c.offer_id else None
    if capacity is None:
        return True, "no host offer capacity limits this application"
    taken = _during(c, ctx.offer_places)
    if len(taken) >= int(capacity):
        return False, (f"host offer {c.offer_id} is full on those dates: {len(taken)} of {capacity} places "
                       f"taken at once ({', '.join(taken)})")
    return True, f"host offer {c.offer_id}: {len(taken)} of {capacity} places taken at once on those dates"


@rule("no_overlapping_exchange")
def _overlap(params, c: Candidate, ctx: Context):
    if clashes := _during(c, ctx.visitor_exchanges):
        return False, f"the visitor already has an overlapping exchange: {', '.join(clashes)}"
    return True, "the visitor has no overlapping exchange"


def default_rules(eligible_countries: list[str], exchanges_end_by: date | None = None) -> list[dict[str, Any]]:
    """The rule set a call starts with (version 1): every rule of the catalogue; the call's
    last exchange day, when it names one, bounds the dates."""
    params: dict[str, dict[str, Any]] = {
        "eligible_countries": {"countries": list(eligible_countries)},
        "dates_inside_call": {"exchanges_end_by": exchanges_end_by.isoformat()} if exchanges_end_by else {},
        "organisation_types": {"types": [t.value for t in OrganisationType]},
        "duration": {"min_working_days": MIN_WORKING_DAYS},
        "host_capacity": {"offer_capacities": {}},
    }
    return [{"rule": name, "params": params.get(name, {})} for name in RULES]


def with_call_facts(rules: list[dict[str, Any]], eligible_countries: list[str],
                    exchanges_end_by: date | None) -> list[dict[str, Any]]:
    """The rules with the call's own facts as the call states them now (a change before it
    opened): its eligible countries, its last exchange day; every other parameter stays."""
    changed = []
    for r in rules:
        params = dict(r.get("params") or {})
        if r["rule"] == "eligible_countries":
            params["countries"] = list(eligible_countries)
        elif r["rule"] == "dates_inside_call":
            params.pop("exchanges_end_by", None)
            params.update({"exchanges_end_by": exchanges_end_by.isoformat()} if exchanges_end_by else {})
        changed.append({**r, "params": params})
    return changed


def unknown_rules(rules: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("rule")) for r in rules if r.get("rule") not in RULES]


# What each rule's parameters may be, checked when a rule set is published: a rule then never
# meets a parameter it cannot read while judging an application (that would stall its admission).
def _days(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 366


def _names(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 100 and all(isinstance(v, str) and len(v) <= 64 for v in value)


def _day(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _places(value: Any) -> bool:
    return isinstance(value, dict) and all(_days(places) for places in value.values())


PARAMETERS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "eligible_countries": {"countries": _names},
    "organisation_types": {"types": _names},
    "duration": {"min_working_days": _days, "max_working_days": _days},
    "dates_inside_call": {"exchanges_end_by": _day},
    "host_capacity": {"offer_capacities": _places},
}
EXPECTED = {_days: "a whole number of days 0..366", _names: "a list of at most 100 names",
            _day: "an ISO date (YYYY-MM-DD)", _places: "an object of offer id -> places 0..366"}


def parameter_errors(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(field, what is wrong) for each parameter a known rule cannot read."""
    errors = []
    for i, r in enumerate(rules):
        known = PARAMETERS.get(r["rule"], {})
        for name, value in (r.get("params") or {}).items():
            check = known.get(name)
            if check is None:
                errors.append((f"rules.{i}.params.{name}", f"{r['rule']} takes no parameter {name!r}"))
            elif value is not None and not check(value):
                errors.append((f"rules.{i}.params.{name}", f"{r['rule']}.{name} must be {EXPECTED[check]}"))
    return errors


def evaluate(rules: list[dict[str, Any]], candidate: Candidate, context: Context) -> list[Outcome]:
    """Every rule judged on its own: one failing rule never hides another's outcome."""
    return [RULES[r["rule"]](r.get("params") or {}, candidate, context) for r in rules]


@dataclass(frozen=True)
class Verdict:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[str]:
        return [f"{o.rule}: {o.reason}" for o in self.outcomes if not o.passed]

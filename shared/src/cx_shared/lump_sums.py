"""Lump sums by rule: a pure function of the two cities' coordinates, the working days, the
travel mode and a versioned rule set; the inputs travel with the result so that any amount
can be recomputed and explained. Integer euro cents, no I/O.

The one rule of the programme's money: assessment reserves ``exchange_lump_sum`` of an
application when it approves it, grants commits the same function's result for the same
submitted facts, so at rest the envelope's reservations equal the commitments."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cx_shared.vocabulary import TravelMode

from cx_shared.geography import UnknownCity, locate
from cx_shared.lump_sum_rules import LumpSumRuleSet, UnknownRuleSet, rule_set

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

# ---------------------------------------------------------------------------------------------


class LumpSumError(ValueError):
    """The lump sum cannot be computed from these inputs (the reason says why)."""


@dataclass(frozen=True)
class Location:
    city: str
    country: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class LumpSum:
    rule_set_version: str
    distance_km: int
    band: str | None
    travel_mode: str
    travel_cents: int
    daily_cents: int
    days: int
    subsistence_cents: int
    total_cents: int
    capped: bool
    inputs: dict[str, Any]

    def as_record(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def great_circle_km(a: Location, b: Location) -> float:
    """Haversine distance between two points on the mean-radius sphere."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi, dlmb = phi2 - phi1, math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def compute_lump_sum(rules: LumpSumRuleSet, origin: Location, destination: Location, working_days: int,
                     travel_mode: TravelMode | str) -> LumpSum:
    """Travel by distance band (green travel pays more) plus the host-country group's daily
    amount times the working days, capped per exchange. The inputs travel with the result."""
    mode = TravelMode(travel_mode)
    if working_days < 0:
        raise LumpSumError(f"working days cannot be negative ({working_days})")
    group = rules.group_of(destination.country)
    if group is None:
        raise LumpSumError(f"host country {destination.country} has no country group in rule set {rules.version}")
    km = int(great_circle_km(origin, destination))  # whole kilometres: 99.9 km is still in 10-99
    band = rules.band_for(km)
    travel = 0 if band is None else (band.green_cents if mode is TravelMode.GREEN else band.standard_cents)
    daily = rules.daily_cents[group]
    subsistence = daily * working_days
    capped = travel + subsistence > rules.cap_cents
    if capped:  # the cap cuts subsistence first: the journey has to be made whatever the length
        travel = min(travel, rules.cap_cents)
        subsistence = rules.cap_cents - travel
    inputs = {"origin": origin.__dict__, "destination": destination.__dict__, "working_days": working_days,
              "travel_mode": mode.value, "host_country_group": group}
    return LumpSum(rules.version, km, band.label if band else None, mode.value, travel, daily, working_days,
                   subsistence, travel + subsistence, capped, inputs)


def exchange_lump_sum(rule_set_version: str, visitor: tuple[str, str], host: tuple[str, str], working_days: int,
                      travel_mode: TravelMode | str) -> LumpSum:
    """The lump sum of an exchange from its submitted facts: the visitor's and the host's
    (city, country), the working days and the travel mode, under the call's rule set.
    LumpSumError when it cannot be computed (unknown city or rule set, a country without a group)."""
    try:
        rules = rule_set(rule_set_version)
        origin, destination = (location(*place) for place in (visitor, host))
    except (UnknownCity, UnknownRuleSet) as exc:
        raise LumpSumError(str(exc)) from None
    return compute_lump_sum(rules, origin, destination, working_days, travel_mode)


def location(city: str, country: str) -> Location:
    place = locate(city, country)
    return Location(place.name, place.country, place.latitude, place.longitude)


def recompute(rules: LumpSumRuleSet, stored: Mapping[str, Any], working_days: int | None = None) -> LumpSum:
    """Recompute a stored lump sum from its own inputs (optionally with other working days)."""
    inputs = stored["inputs"]
    if rules.version != stored["rule_set_version"]:
        raise LumpSumError(f"lump sum was computed with {stored['rule_set_version']}, not {rules.version}")
    days = inputs["working_days"] if working_days is None else working_days
    return compute_lump_sum(rules, Location(**inputs["origin"]), Location(**inputs["destination"]), days,
                            inputs["travel_mode"])


def final_lump_sum(rules: LumpSumRuleSet, stored: Mapping[str, Any], actual_working_days: int) -> LumpSum:
    """The lump sum earned by the exchange as carried out: a shorter exchange earns the daily
    amount for the days actually worked (none below the minimum), a longer one no more than planned."""
    planned = stored["inputs"]["working_days"]
    days = min(actual_working_days, planned)
    if days < rules.min_working_days:
        days = 0
    return recompute(rules, stored, days)


def prefinancing_cents(rules: LumpSumRuleSet, total_cents: int) -> int:
    return total_cents * rules.prefinancing_percent // 100

"""Lump sums by rule: known city pairs checked against an independent distance computation."""

from __future__ import annotations

import math

import pytest

from cx_shared.lump_sums import Location, LumpSumError, compute_lump_sum, final_lump_sum, recompute
from cx_shared.geography import UnknownCity, locate
from cx_shared.lump_sum_rules import DEFAULT_V1, UnknownRuleSet, rule_set

# The default rule set's travel table, written out again here (not read from the code).
BANDS_KM_STANDARD_GREEN = [
    (10, 99, 2_300, 5_000), (100, 499, 18_000, 21_000), (500, 1_999, 27_500, 32_000),
    (2_000, 2_999, 36_000, 41_000), (3_000, 3_999, 53_000, 61_000), (4_000, 7_999, 82_000, 90_000),
    (8_000, 10**9, 150_000, 160_000),
]


def independent_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Spherical law of cosines on a 6371 km sphere: a different formula from the service's."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cos_c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371.0 * math.acos(max(-1.0, min(1.0, cos_c)))


def place(city: str, country: str) -> Location:
    p = locate(city, country)
    return Location(p.name, p.country, p.latitude, p.longitude)


PAIRS = [  # visitor city, host city, the band we expect from a map (km)
    (("Vienna", "AT"), ("Bratislava", "SK"), 10),
    (("Brussels", "BE"), ("Amsterdam", "NL"), 100),
    (("Madrid", "ES"), ("Berlin", "DE"), 500),
    (("Reykjavik", "IS"), ("Berlin", "DE"), 2_000),
    (("Lisbon", "PT"), ("Helsinki", "FI"), 3_000),
    (("Lisbon", "PT"), ("Yerevan", "AM"), 4_000),
    (("Tokyo", "JP"), ("Lisbon", "PT"), 8_000),
]


@pytest.mark.parametrize("origin,destination,band_start", PAIRS, ids=[f"{o[0]}-{d[0]}" for o, d, _ in PAIRS])
def test_travel_lump_sum_follows_the_distance_band(origin, destination, band_start):
    a, b = place(*origin), place(*destination)
    km = independent_km(a.latitude, a.longitude, b.latitude, b.longitude)
    band = next(band for band in BANDS_KM_STANDARD_GREEN if band[0] <= int(km) <= band[1])
    assert band[0] == band_start, f"{origin}->{destination} is {km:.0f} km"

    standard = compute_lump_sum(DEFAULT_V1, a, b, 5, "standard")
    green = compute_lump_sum(DEFAULT_V1, a, b, 5, "green")

    assert abs(standard.distance_km - km) <= 1.5
    assert standard.travel_cents == band[2]
    assert green.travel_cents == band[3] > standard.travel_cents
    assert isinstance(standard.total_cents, int)


def test_subsistence_is_the_host_country_groups_daily_amount_times_the_working_days():
    to_sweden = compute_lump_sum(DEFAULT_V1, place("Berlin", "DE"), place("Stockholm", "SE"), 4, "standard")
    to_poland = compute_lump_sum(DEFAULT_V1, place("Berlin", "DE"), place("Warsaw", "PL"), 4, "standard")
    assert to_sweden.subsistence_cents == 4 * 18_000  # group 1
    assert to_poland.subsistence_cents == 4 * 14_000  # group 3
    assert to_sweden.total_cents == to_sweden.travel_cents + to_sweden.subsistence_cents
    assert not to_sweden.capped


def test_the_cap_limits_a_long_far_exchange_and_cuts_subsistence_first():
    lump = compute_lump_sum(DEFAULT_V1, place("Lisbon", "PT"), place("Helsinki", "FI"), 23, "green")
    uncapped = 61_000 + 23 * 18_000
    assert uncapped > DEFAULT_V1.cap_cents
    assert lump.capped and lump.total_cents == DEFAULT_V1.cap_cents == 450_000
    assert lump.travel_cents == 61_000 and lump.subsistence_cents == 450_000 - 61_000


def test_under_ten_kilometres_there_is_no_travel_lump_sum():
    lump = compute_lump_sum(DEFAULT_V1, place("Strasbourg", "FR"), place("Kehl", "DE"), 3, "green")
    assert lump.distance_km < 10 and lump.band is None and lump.travel_cents == 0
    assert lump.total_cents == 3 * 16_000


def test_inputs_and_version_are_stored_so_the_amount_can_be_recomputed():
    lump = compute_lump_sum(DEFAULT_V1, place("Brussels", "BE"), place("Vilnius", "LT"), 7, "green")
    record = lump.as_record()
    assert record["rule_set_version"] == "default-v1"
    assert record["inputs"]["origin"]["city"] == "Brussels" and record["inputs"]["working_days"] == 7
    assert recompute(rule_set(record["rule_set_version"]), record) == lump


def test_a_shorter_exchange_earns_the_daily_amount_for_the_days_worked_only():
    record = compute_lump_sum(DEFAULT_V1, place("Brussels", "BE"), place("Vilnius", "LT"), 10, "standard").as_record()
    shorter = final_lump_sum(DEFAULT_V1, record, 6)
    longer = final_lump_sum(DEFAULT_V1, record, 12)
    too_short = final_lump_sum(DEFAULT_V1, record, 2)
    assert shorter.subsistence_cents == 6 * 14_000 and shorter.travel_cents == record["travel_cents"]
    assert longer.total_cents == record["total_cents"]
    assert too_short.subsistence_cents == 0 and too_short.travel_cents == record["travel_cents"]


def test_an_unknown_city_is_a_clear_error():
    with pytest.raises(UnknownCity, match="Atlantis"):
        locate("Atlantis", "GR")
    assert locate("Bruxelles", "be").name == "Brussels"  # alternate names, any case
    assert locate("Lodz", "PL").name == "Łódź"  # accents ignored


def test_a_host_country_outside_every_group_and_an_unknown_rule_set_are_errors():
    with pytest.raises(LumpSumError, match="JP"):
        compute_lump_sum(DEFAULT_V1, place("Lisbon", "PT"), place("Tokyo", "JP"), 5, "standard")
    with pytest.raises(UnknownRuleSet):
        rule_set("default-v0")

"""Lump-sum rule sets: versioned, per call, amounts in euro cents.

A call names its rule set (``CallPublished.lump_sum_rule_set``); a rule set is never
changed once published: a change is a new version, so every committed amount can be
recomputed from its stored inputs and the version beside it. The figures below are
the programme's *defaults* (see domain.md), not official amounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DistanceBand:
    """Travel lump sum for a great-circle distance from ``min_km`` up to ``max_km`` (inclusive)."""

    min_km: int
    max_km: int | None  # None: no upper bound
    standard_cents: int
    green_cents: int

    def contains(self, km: int) -> bool:
        return km >= self.min_km and (self.max_km is None or km <= self.max_km)

    @property
    def label(self) -> str:
        return f"{self.min_km}+ km" if self.max_km is None else f"{self.min_km}-{self.max_km} km"


@dataclass(frozen=True)
class LumpSumRuleSet:
    version: str
    bands: tuple[DistanceBand, ...]
    # Daily accommodation/subsistence by host-country group (cost of living), and the groups.
    daily_cents: dict[str, int]
    country_groups: dict[str, str]
    cap_cents: int  # per exchange, travel + subsistence
    prefinancing_percent: int  # share of the lump sum paid when the agreement is accepted
    min_working_days: int = 3  # an exchange reported shorter than this earns no subsistence
    obligations: tuple[str, ...] = field(default=())

    def band_for(self, km: int) -> DistanceBand | None:
        """The band of a distance, None below the first band (no travel lump sum)."""
        return next((b for b in self.bands if b.contains(km)), None)

    def group_of(self, country: str) -> str | None:
        return self.country_groups.get(country.upper())


def _groups(**members: str) -> dict[str, str]:
    return {country: group for group, countries in members.items() for country in countries.split()}


DEFAULT_V1 = LumpSumRuleSet(
    version="default-v1",
    bands=(
        DistanceBand(10, 99, 2_300, 5_000),
        DistanceBand(100, 499, 18_000, 21_000),
        DistanceBand(500, 1_999, 27_500, 32_000),
        DistanceBand(2_000, 2_999, 36_000, 41_000),
        DistanceBand(3_000, 3_999, 53_000, 61_000),
        DistanceBand(4_000, 7_999, 82_000, 90_000),
        DistanceBand(8_000, None, 150_000, 160_000),
    ),
    daily_cents={"group-1": 18_000, "group-2": 16_000, "group-3": 14_000},
    country_groups=_groups(**{
        "group-1": "DK FI IS IE LU SE",
        "group-2": "AT BE CY DE ES FR GR IT MT NL PT",
        "group-3": "AL AM BA BG CZ EE HR HU LT LV MD ME MK PL RO RS SI SK TR UA XK",
    }),
    cap_cents=450_000,
    prefinancing_percent=70,
    obligations=(
        "Carry out the exchange with the host as described in the application.",
        "Tell the partnership at once of any change of dates, host or duration.",
        "Submit the follow-up report within 30 days of the end of the exchange.",
        "Keep proof of attendance (host confirmation) for five years for audits.",
        "A shorter exchange than planned reduces the subsistence lump sum by rule.",
    ),
)

RULE_SETS: dict[str, LumpSumRuleSet] = {r.version: r for r in (DEFAULT_V1,)}


class UnknownRuleSet(LookupError):
    pass


def rule_set(version: str) -> LumpSumRuleSet:
    try:
        return RULE_SETS[version]
    except KeyError:
        raise UnknownRuleSet(f"unknown lump-sum rule set {version!r} (known: {', '.join(RULE_SETS)})") from None

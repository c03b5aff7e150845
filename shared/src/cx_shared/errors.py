"""Errors that become RFC 9457 problem details at the HTTP edge.

Plain exceptions without I/O or framework, so domain code may raise them.
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, rule: str | None = None,
                 errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or ([{"field": field, "rule": rule or "", "message": detail}] if field else [])

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": f"https://clusterxchange.eu/problems/{self.slug()}", "title": self.title,
                                "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body

    def slug(self) -> str:
        return self.title.lower().replace(" ", "-")

    @property
    def headers(self) -> dict[str, str]:
        """Response headers that go with this problem."""
        return {}


class Invalid(Problem):
    status, title = 422, "Validation failed"


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    status, title = 409, "Conflict"


class Gone(Problem):
    """What was asked for existed and is gone for good (personal data erased)."""
    status, title = 410, "Gone"


class TooLarge(Problem):
    """A request body or an event above its size bound: refused before anything is stored."""
    status, title = 413, "Payload too large"


class Busy(Problem):
    """A short lock stayed taken: the request changed nothing and may simply be sent again."""
    status, title = 503, "Service busy"


class TooManyRequests(Problem):
    """A rate limit is reached: nothing was done; the same request may be sent after `retry_after` s."""
    status, title = 429, "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}

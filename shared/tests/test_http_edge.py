"""The HTTP edge every service shares (issue 23): an undeclared method is 405 with Allow, and
rate limits per principal (its writes) and per client address (writes and routes that need no
sign-in), answered 429 with Retry-After and a problem body; probes and metrics never limited."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends

from cx_shared.auth import Principal, issue_token, principal
from cx_shared.service import Service
from cx_shared.settings import ServiceSettings

SECRET = "a-test-secret-that-is-long-enough-0123456789"
router = APIRouter()
Who = Annotated[Principal, Depends(principal)]


@router.get("/things")
async def list_things(who: Who) -> list[str]:
    return [who.subject]


@router.post("/things")
async def add_thing(who: Who) -> dict[str, str]:
    return {"by": who.subject}


@router.get("/things/{thing_id}/parts")
async def parts(thing_id: str, who: Who) -> list[str]:
    return []


@router.get("/open")
async def open_to_all() -> dict[str, str]:
    return {"open": "yes"}


def app_with(**limits: str):
    settings = ServiceSettings(service_name="assessment", jwt_secret=SECRET, **limits)
    return Service(settings, title="edge", description="", handlers={}, storage=lambda db: None,
                   outbox_collections=[], routers=[router]).app()


def client(app, address: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4242)), base_url="http://edge")


def bearer(subject: str, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(secret, "clusterxchange-local", subject, ["visitor"])}


def assert_limited(answer: httpx.Response, kind: str) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/too-many-requests") and body["status"] == 429 and kind in body["detail"]


async def test_an_undeclared_method_is_405_naming_every_method_of_the_path():
    async with client(app_with()) as c:
        answer = await c.delete("/things")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
        assert answer.json()["status"] == 405 and answer.headers["content-type"] == "application/problem+json"
        assert (await c.put("/things/t-1/parts")).headers["allow"] == "GET"
        assert (await c.post("/health/live")).headers["allow"] == "GET"


async def test_writes_are_limited_per_principal_and_reads_are_not():
    app = app_with(rate_limit_principal_writes="2/minute", rate_limit_per_address="")
    async with client(app) as c:
        for _ in range(2):
            assert (await c.post("/things", headers=bearer("ann"))).status_code == 200
        assert_limited(await c.post("/things", headers=bearer("ann")), "principal")
        assert (await c.get("/things", headers=bearer("ann"))).status_code == 200  # reads: not limited
        assert (await c.post("/things", headers=bearer("bob"))).status_code == 200  # another principal


async def test_a_forged_token_spends_nobody_s_budget():
    app = app_with(rate_limit_principal_writes="2/minute", rate_limit_per_address="")
    async with client(app) as c:
        for _ in range(5):  # ann's subject in tokens signed by somebody else
            assert (await c.post("/things", headers=bearer("ann", "forged-" + SECRET))).status_code == 401
        assert (await c.post("/things", headers=bearer("ann"))).status_code == 200


async def test_writes_and_sign_in_free_routes_are_limited_per_client_address():
    app = app_with(rate_limit_principal_writes="", rate_limit_per_address="3/minute")
    async with client(app, "10.0.0.1") as here, client(app, "10.0.0.2") as there:
        assert (await here.post("/things", headers=bearer("ann"))).status_code == 200
        for _ in range(2):
            assert (await here.get("/open")).status_code == 200
        assert_limited(await here.get("/open"), "client address")
        assert_limited(await here.post("/things", headers=bearer("bob")), "client address")
        assert (await here.get("/things", headers=bearer("ann"))).status_code == 200  # a signed-in read
        for _ in range(10):  # probes and metrics are never limited
            assert (await here.get("/health/live")).status_code == 200
            assert (await here.get("/metrics")).status_code == 200
        assert (await there.get("/open")).status_code == 200


async def test_the_openapi_document_declares_429_where_a_limit_applies():
    async with client(app_with()) as c:
        paths = (await c.get("/openapi.json")).json()["paths"]
    assert "429" in paths["/things"]["post"]["responses"] and "429" in paths["/open"]["get"]["responses"]
    assert "Retry-After" in paths["/things"]["post"]["responses"]["429"]["headers"]
    assert "429" not in paths["/things"]["get"]["responses"]
    assert "429" not in paths["/health/live"]["get"]["responses"] and "429" not in paths["/metrics"]["get"]["responses"]


def test_the_defaults_limit_and_a_rate_that_is_not_one_is_refused_naming_the_setting(monkeypatch):
    s = ServiceSettings()
    assert s.rate_limit_principal_writes and s.rate_limit_per_address
    monkeypatch.setenv("RATE_LIMIT_PER_ADDRESS", "plenty")
    with pytest.raises(ValueError, match="RATE_LIMIT_PER_ADDRESS"):
        ServiceSettings()


def test_the_declared_day_pattern_admits_exactly_the_days_the_services_accept():
    """The OpenAPI document's pattern and formatMinimum/Maximum say what the validator enforces:
    a schema-valid date is accepted, a refused one is schema-invalid (issue 23)."""
    import re
    from datetime import date, timedelta

    from pydantic import TypeAdapter, ValidationError

    from cx_shared.http import DAY_PATTERN, Day

    schema = TypeAdapter(Day).json_schema()
    assert schema["pattern"] == DAY_PATTERN and schema["format"] == "date"
    assert (schema["formatMinimum"], schema["formatMaximum"]) == ("2020-01-01", "2099-12-31")
    pattern, accepts = re.compile(DAY_PATTERN), TypeAdapter(Day)
    day = date(2019, 1, 1)
    while day <= date(2100, 12, 31):
        text = str(day)
        try:
            accepts.validate_json(f'"{text}"')
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(pattern.search(text)) == accepted == (date(2020, 1, 1) <= day <= date(2099, 12, 31)), text
        day += timedelta(days=1)
    for odd in ("2023-02-29", "2100-02-29", "2021-04-31", "2024-13-01", "2024-00-10", "2024-1-1",
                "2024-01-01T00:00:00", "20240101"):
        assert not pattern.search(odd), odd
        with pytest.raises(ValidationError):
            accepts.validate_json(f'"{odd}"')


def test_a_body_s_date_is_accepted_as_fastapi_hands_it_over():
    """FastAPI validates a body's fields from parsed JSON (python mode): a string date must pass."""
    from pydantic import BaseModel, ValidationError

    from cx_shared.http import Day

    class Body(BaseModel):
        on: Day

    assert str(Body.model_validate({"on": "2024-02-29"}).on) == "2024-02-29"
    for odd in ("2024-01-01T00:00:00", "2019-12-31", "2100-01-01"):
        with pytest.raises(ValidationError):
            Body.model_validate({"on": odd})

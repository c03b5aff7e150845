"""Fixtures of the applications service's integration tests: the service as a real process
on the real broker and database, and the people of a small programme talking to it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import holidays
import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from cx_shared.envelope import Envelope
from cx_shared.testing.consortium import consortium
from cx_shared.testing.kafka import publish_envelope

TODAY = datetime.now(UTC).date()


def next_monday(after_days: int) -> date:
    day = TODAY + timedelta(days=after_days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@dataclass
class Programme:
    """A running applications service and what the tests set up in it."""

    url: str
    db: object
    token: object
    namespace: str
    pm: dict
    client: httpx.AsyncClient

    async def post(self, path: str, body: dict | None = None, headers: dict | None = None, **kw):
        return await self.client.post(path, json=body, headers=headers or self.pm, **kw)

    async def get(self, path: str, headers: dict | None = None, **kw):
        return await self.client.get(path, headers=headers or self.pm, **kw)

    async def ok(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
                 status: int = 200, **kw) -> dict:
        response = await self.client.request(method, path, json=body, headers=headers or self.pm, **kw)
        assert response.status_code == status, response.text
        return response.json()

    async def eventually(self, read, until, timeout: float = 30.0):
        """Read until the condition holds (events are consumed asynchronously); fail with the last read."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await read()
            if until(value):
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"still not there after {timeout}s: {value}")
            await asyncio.sleep(0.2)

    async def inject(self, kafka: str, application: dict, event_cls, **fields) -> None:
        """Publish an event about an application as its producing service would, and wait
        until the service has applied it."""
        event = event_cls(application_id=application["application_id"], call_id=application["call_id"], **fields)
        envelope = Envelope.wrap(event, source="/clusterxchange/" + event.topic.producer,
                                 subject=application["application_id"])
        await publish_envelope(kafka, envelope, self.namespace)
        await self.eventually(lambda: self.db.timeline.find_one({"_id": envelope.id}), lambda doc: doc is not None)

    async def stored(self) -> dict[str, int]:
        """How many documents each collection holds (to show a refusal stored nothing)."""
        return {name: await self.db[name].count_documents({})
                for name in ("organisations", "partnerships", "calls", "offers", "applications")}

    # --- the people and things of a programme -----------------------------------------------

    def organisation_body(self, country: str, city: str, roles: list[str], **extra) -> dict:
        return {"legal_name": f"{city} Cluster", "country": country, "city": city,
                "organisation_type": "cluster_organisation", "ecosystems": ["digital", "renewable_energy"],
                "roles": roles, "contact": {"name": f"Contact in {city}", "email": f"contact@{city.lower()}.example",
                                            "language": "en"}, **extra}

    async def enrol(self, who: dict, country: str, city: str, roles: list[str], **extra) -> dict:
        return await self.ok("POST", "/organisations", self.organisation_body(country, city, roles, **extra), who,
                             status=201)

    async def vera_and_hans(self) -> tuple[dict, dict, dict, dict, dict, dict]:
        """A call, and vera's visitor organisation in Lyon and hans's host in Berlin: their
        tokens, the partnership, the call and the two organisations."""
        vt, ht = self.token("visitor", subject="vera"), self.token("host", subject="hans")
        partnership, call = await self.partnership_and_call()
        visitor = await self.enrol(vt, "FR", "Lyon", ["visitor"])
        host = await self.enrol(ht, "DE", "Berlin", ["host"])
        return vt, ht, partnership, call, visitor, host

    async def partnership_and_call(self, **call) -> tuple[dict, dict]:
        partnership = await self.ok("POST", "/partnerships", {
            "name": "GreenTech 2.0", "members": consortium(
                ("Cleantech Lyon", "FR", "more_developed"), ("Berlin Energy", "DE", "more_developed"),
                ("Sofia Green", "BG", "less_developed")), "ecosystems": ["renewable_energy"],
            "contact_email": "office@greentech.example"}, status=201)
        body = {"partnership_id": partnership["partnership_id"], "title": "Exchanges 2026",
                "opens_on": (TODAY - timedelta(days=10)).isoformat(),
                "closes_on": (TODAY + timedelta(days=150)).isoformat(), "budget_cents": 5_000_000,
                "assessment_mode": "automatic", **call}
        return partnership, await self.ok("POST", "/calls", body, status=201)

    async def publish_offer(self, who: dict, host: dict, start: date, *, capacity: int, title: str = "Smart grids",
                            ecosystem: str = "energy_intensive", days: int = 21, language: str = "de") -> dict:
        """A host's offer whose window opens on `start` and lasts `days`."""
        return await self.ok("POST", "/offers", {
            "host_id": host["organisation_id"], "title": title, "ecosystem": ecosystem,
            "window_start": start.isoformat(), "window_end": (start + timedelta(days=days - 1)).isoformat(),
            "capacity": capacity, "language": language}, who, status=201)

    def application_body(self, call: dict, visitor: dict, host: dict, start: date, days: int = 5, **extra) -> dict:
        return {"call_id": call["call_id"], "visitor_id": visitor["organisation_id"],
                "host_id": host["organisation_id"], "purposes": ["learn_from_other_cluster"],
                "objectives": "Learn how Berlin runs its hydrogen valley", "planned_start": start.isoformat(),
                "planned_end": (start + timedelta(days=days - 1)).isoformat(), "travel_mode": "green", **extra}


@pytest_asyncio.fixture
async def programme(run_service, infra, namespace, token):
    async for p in running_programme(run_service, infra, namespace, token):
        yield p


@pytest_asyncio.fixture
async def programme_200_days_later(run_service, infra, namespace, token):
    """The service with its follow-up clock 200 days ahead: report deadlines pass at once."""
    async for p in running_programme(run_service, infra, namespace, token, CLOCK_OFFSET_SECONDS=str(200 * 86400),
                                     OVERDUE_POLL_SECONDS="0.5"):
        yield p


async def running_programme(run_service, infra, namespace, token, **env):
    service = run_service("applications", **env)
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    db = client[service.env["MONGODB_DATABASE"]]
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        yield Programme(service.url, db, token, namespace, token("programme_manager", subject="pm", programme=True), http)
    await client.drop_database(service.env["MONGODB_DATABASE"])
    await client.close()


@pytest.fixture
def later():
    return next_monday


def quiet_week(after_days: int) -> date:
    """A Monday whose week has no German public holiday (so Mon..Fri are 5 working days)."""
    day = next_monday(after_days)
    while any(day + timedelta(days=i) in holidays.country_holidays("DE", years=day.year) for i in range(5)):
        day += timedelta(days=7)
    return day


@pytest.fixture
def quiet():
    return quiet_week

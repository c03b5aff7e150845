"""Every route of the four running services × every kind of caller → passed or refused, as
`tests/authorization.py` says; and no route of the services is missing from that table."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import pytest

from tests.authorization import ANONYMOUS, PRINCIPALS, TABLE, Route
from tests.journey import Journey, mail_to, next_monday, wait_mail_settled

pytestmark = pytest.mark.infra
SERVICES = ("applications", "assessment", "grants", "notifications")
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # FastAPI's own pages


def routes_of(service: str) -> set[tuple[str, str]]:
    app = importlib.import_module(f"{service}.app").app
    return {(method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations}


def test_every_route_is_in_the_table():
    table = {(r.service, r.method, r.path) for r in TABLE}
    served = {(service, *route) for service in SERVICES for route in routes_of(service)}
    assert not served - table, f"routes missing from tests/authorization.py: {sorted(served - table)}"
    assert not table - served, f"rows for routes that do not exist: {sorted(table - served)}"
    assert len(table) == len(TABLE), "a route has two rows"


@dataclass
class Scenario:
    """One exchange of partnership A with a committed grant, and the callers around it."""

    urls: dict[str, str]
    suffix: str
    partnership_id: str = ""
    call_id: str = ""
    visitor_id: str = ""
    host_id: str = ""
    organisation_id: str = ""
    offer_id: str = ""
    application_id: str = ""
    notification_id: str = ""
    subscription_id: str = ""
    token: str = ""  # an email's opaque unsubscribe token
    confirmation_token: str = ""  # the visitor's contact address's confirmation link's token
    export_id: str = ""  # made anew for each request (fresh)
    erasure_id: str = ""
    action_id: str = ""  # a four-eyes action (a top-up) initiated by an officer outside the table
    headers: dict[str, dict] = field(default_factory=dict)

    def application_body(self) -> dict:
        start = next_monday(80)
        return {"call_id": self.call_id, "visitor_id": self.visitor_id, "host_id": self.host_id,
                "purposes": ["learn_from_other_cluster"], "objectives": "See the host's pilot line.",
                "planned_start": str(start), "planned_end": str(start + timedelta(days=4)),
                "travel_mode": "green"}

    def subscription_body(self) -> dict:
        return {"url": "https://subscriber.example.eu/hooks", "event_types": ["application.submitted"],
                "partnership_ids": [self.partnership_id], "owner_email": f"crm-{self.suffix}@example.eu"}

    def new_call(self) -> str:
        """A call of the scenario's partnership, for a route that ends it."""
        response = httpx.post(f"{self.urls['applications']}/calls", headers=self.headers["programme_manager"],
                              json={"partnership_id": self.partnership_id, "title": "Matrix call to end",
                                    "opens_on": str(date.today()), "closes_on": str(date.today() + timedelta(days=90)),
                                    "budget_cents": 100_000}, timeout=20)
        assert response.status_code == 201, response.text
        return response.json()["call_id"]

    def new_erasure(self) -> str:
        """An erasure of the visitor's contact person, asked by the programme-wide manager."""
        return self.personal_data_request("erasures")["erasure_id"]

    def new_export(self) -> str:
        return self.personal_data_request("exports")["export_id"]

    def personal_data_request(self, kind: str) -> dict:
        response = httpx.post(f"{self.urls['applications']}/personal-data/{kind}",
                              json={"subject_id": self.visitor_id}, headers=self.headers["programme_manager"],
                              timeout=20)
        assert response.status_code == 202, response.text
        return response.json()

    def new_subscription(self) -> str:
        response = httpx.post(f"{self.urls['notifications']}/webhooks/subscriptions", json=self.subscription_body(),
                              headers=self.headers["programme_manager"], timeout=20)
        assert response.status_code == 201, response.text
        return response.json()["subscription_id"]


async def build(system: dict, token, smtp_sink_url: str) -> Scenario:
    journey = Journey(system["applications"].url, token)
    other = Journey(system["applications"].url, token)
    s = Scenario({name: proc.url for name, proc in system.items()}, journey.suffix)
    call = journey.open_call()
    other.open_call()
    journey.enrol_pair()
    other.enrol_pair()
    s.partnership_id, s.call_id = call["partnership_id"], call["call_id"]
    s.visitor_id = s.organisation_id = journey.visitor["organisation_id"]
    s.host_id = journey.host["organisation_id"]
    s.confirmation_token = journey.confirmation_tokens[journey.visitor_email] or ""
    partnership_b = other.call["partnership_id"]
    staff = {"assessor": "assessor", "grant_officer": "grant_officer", "manager": "programme_manager"}
    s.headers = {
        "visitor": journey.visitor_headers, "other_visitor": other.visitor_headers,
        "host": journey.host_headers, "other_host": other.host_headers,
        **{name: token(role, subject=f"{name}-{s.suffix}", partnership_ids=(s.partnership_id,))
           for name, role in staff.items()},
        **{f"{name}_b": token(role, subject=f"{name}-b-{s.suffix}", partnership_ids=(partnership_b,))
           for name, role in staff.items()},
        "programme_manager": token("programme_manager", subject=f"programme-{s.suffix}", programme=True),
        **{name: token("assessor", "grant_officer", "programme_manager", subject=f"{name}-{s.suffix}",
                       partnership_roles={s.partnership_id: [in_a], partnership_b: [in_b]})  # a role in A, another in B
           for name, (in_a, in_b) in {"assessor_officer_b": ("assessor", "grant_officer"),
                                      "officer_assessor_b": ("grant_officer", "assessor"),
                                      "assessor_manager_b": ("assessor", "programme_manager")}.items()},
        ANONYMOUS: {},
    }
    # The visitor joins A (its own act): A's managers act for it; the host joins nothing.
    journey.post(f"/organisations/{s.visitor_id}/partnerships", {"partnership_id": s.partnership_id},
                 journey.visitor_headers)
    s.offer_id = journey.post("/offers", {
        "host_id": s.host_id, "title": "Pilot line visit", "ecosystem": "electronics",
        "window_start": str(next_monday(20)), "window_end": str(next_monday(150)), "capacity": 3},
        journey.host_headers)["offer_id"]
    s.application_id = journey.submit()["application_id"]
    await journey.wait_status(s.application_id, "approved")
    accepted = httpx.post(f"{s.urls['assessment']}/applications/{s.application_id}/host-decision",
                          json={"accept": True}, headers=journey.host_headers, timeout=20)
    assert accepted.status_code < 300, accepted.text
    await journey.wait_status(s.application_id, "grant_committed")
    wide = s.headers["programme_manager"]
    await wait_mail_settled(s.urls["notifications"], s.application_id, wide)
    mails = httpx.get(f"{s.urls['notifications']}/notifications", params={"application_id": s.application_id},
                      headers=wide, timeout=10).json()
    s.notification_id = mails[0]["notification_id"]
    s.token = re.search(r"/unsubscribe/([\w\-]+)",
                                    json.dumps(mail_to(smtp_sink_url, journey.visitor_email))).group(1)
    s.subscription_id = s.new_subscription()
    initiator = token("grant_officer", subject=f"initiator-{s.suffix}", partnership_ids=(s.partnership_id,))
    initiated = httpx.post(f"{s.urls['grants']}/calls/{s.call_id}/budget/top-ups", headers=initiator, timeout=10,
                           json={"amount_cents": 100, "reason": "matrix"})
    assert initiated.status_code == 202, initiated.text
    s.action_id = initiated.json()["action_id"]
    return s


def request(s: Scenario, route: Route, principal: str) -> int:
    params = {name: getattr(s, name) for name in re.findall(r"{(\w+)}", route.path)}
    if route.fresh:
        made = {"call_id": s.new_call, "subscription_id": s.new_subscription, "erasure_id": s.new_erasure,
                "export_id": s.new_export}
        params[route.fresh] = made[route.fresh]()
    url = s.urls[route.service] + route.path.format(**params)
    response = httpx.request(route.method, url, headers=s.headers[principal], timeout=30,
                             json=route.body(s) if route.body else None,
                             params=route.query(s) if route.query else None)
    return response.status_code


def verdict(route: Route, principal: str, status: int) -> str | None:
    """What is wrong with this answer, if anything."""
    if status >= 500:
        return f"{status} (a server error)"
    refused = status in (401, 403, 404)
    if principal in route.allowed:
        return f"{status}: refused, but the table lets it pass" if refused else None
    if not refused:
        return f"{status}: passed, but the table refuses it"
    if principal == ANONYMOUS and status != 401:
        return f"{status}: an anonymous caller must get 401"
    if principal != ANONYMOUS and status == 401:
        return "401: a signed-in caller is refused with 403 or 404, not asked to sign in"
    return None


@pytest.fixture
def system(run_service):
    return {name: run_service(name) for name in SERVICES}


async def test_the_authorization_matrix(system, infra, token):
    s = await build(system, token, infra.smtp_sink_url)
    wrong: list[str] = []
    for route in TABLE:
        # the refused first: what they try must change nothing the allowed then act on
        for principal in sorted(PRINCIPALS, key=lambda p: p in route.allowed):
            problem = verdict(route, principal, request(s, route, principal))
            if problem:
                wrong.append(f"{route.method} {route.service}{route.path} as {principal}: {problem}")
    assert not wrong, f"{len(wrong)} cells differ from the table:\n" + "\n".join(wrong)

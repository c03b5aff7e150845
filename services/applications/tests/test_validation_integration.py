"""Every submission and enrolment rule over HTTP: a bad input is refused with 422 naming the
field (RFC 9457 problem), and nothing is stored or published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cx_shared.testing.consortium import consortium

TODAY = datetime.now(UTC).date()


def refused_fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 422 and body["detail"]
    return {e["field"] for e in body["errors"]}


async def outboxes(p) -> int:
    return sum([await p.db[name].count_documents({"outbox.0": {"$exists": True}})
                for name in ("organisations", "partnerships", "calls", "offers", "applications")])


async def test_each_rule_refuses_with_a_named_field_and_stores_nothing(programme, later):
    p = programme
    vt, ht = p.token("visitor", subject="vera"), p.token("host", subject="hans")
    _, call = await p.partnership_and_call()
    _, closed_call = await p.partnership_and_call(opens_on=(TODAY - timedelta(days=60)).isoformat(),
                                                  closes_on=(TODAY - timedelta(days=1)).isoformat())
    _, short_call = await p.partnership_and_call(closes_on=(TODAY + timedelta(days=45)).isoformat())
    visitor = await p.enrol(vt, "FR", "Lyon", ["visitor"])
    host = await p.enrol(ht, "DE", "Berlin", ["host"])
    neighbour = await p.enrol(ht, "FR", "Grenoble", ["host"])
    start = later(21)
    offer = await p.publish_offer(ht, host, start, capacity=1)
    taken = await p.ok("POST", "/applications", p.application_body(call, visitor, host, start,
                                                                   offer_id=offer["offer_id"]), vt, status=201)

    org = p.organisation_body("FR", "Lyon", ["visitor"])
    enrolments = [
        ({**org, "country": "XX"}, "country"),
        ({**org, "organisation_type": "startup"}, "organisation_type"),
        ({**org, "organisation_type": "sme"}, "cluster_name"),
        ({**org, "organisation_type": "scaling_up_support_organisation"}, "subtype"),
        ({**org, "contact": {**org["contact"], "email": "not-an-email"}}, "contact.email"),
        ({**org, "ecosystems": ["space_tourism"]}, "ecosystems.0"),
        ({**org, "roles": ["assessor"]}, "roles.0"),
        ({**org, "city": "Atlantis"}, "city"),
    ]
    for body, field in enrolments:
        assert field in refused_fields(await p.post("/organisations", body, vt)), body

    calls = [
        ({"closes_on": (TODAY - timedelta(days=20)).isoformat()}, "closes_on"),
        ({"eligible_countries": ["FR", "ZZ"]}, "eligible_countries"),
        ({"partnership_id": "ptn-nowhere"}, "partnership_id"),
        ({"budget_cents": -1}, "budget_cents"),
        ({"assessment_mode": "lottery"}, "assessment_mode"),
    ]
    for change, field in calls:
        body = {"partnership_id": call["partnership_id"], "title": "x", "opens_on": TODAY.isoformat(),
                "closes_on": (TODAY + timedelta(days=30)).isoformat(), "budget_cents": 100, **change}
        assert field in refused_fields(await p.post("/calls", body)), change

    offer_body = {"host_id": host["organisation_id"], "title": "x", "ecosystem": "digital",
                  "window_start": start.isoformat(), "window_end": (start + timedelta(days=9)).isoformat(),
                  "capacity": 1, "language": "en"}
    offers = [({"window_end": (start - timedelta(days=1)).isoformat()}, "window_end"),
              ({"capacity": 0}, "capacity"), ({"language": "klingon"}, "language"),
              ({"host_id": visitor["organisation_id"]}, "host_id")]
    for change, field in offers:
        headers = p.pm if field == "host_id" else ht
        assert field in refused_fields(await p.post("/offers", {**offer_body, **change}, headers)), change

    def apply(**change):
        return p.application_body(call, visitor, host, later(56), **change)
    weekend = later(56) - timedelta(days=2)  # a Saturday and a Sunday
    applications = [
        (apply(call_id="call-nowhere"), "call_id", "exists"),
        (p.application_body(closed_call, visitor, host, later(56)), "call_id", "call_open"),
        (p.application_body(call, visitor, neighbour, later(56)), "host_id", "transnational"),
        (apply(host_id=visitor["organisation_id"]), "host_id", "host_role"),
        (apply(planned_start=TODAY.isoformat(), planned_end=(TODAY + timedelta(days=7)).isoformat()),
         "planned_start", "future"),
        (apply(planned_start=weekend.isoformat(), planned_end=(weekend + timedelta(days=1)).isoformat()),
         "planned_end", "min_working_days"),
        (apply(planned_end=(later(56) + timedelta(days=40)).isoformat()), "planned_end", "max_one_month"),
        (p.application_body(short_call, visitor, host, later(56)), "planned_end", "within_call"),
        (apply(offer_id=offer["offer_id"]), "planned_end", "within_offer"),
        (apply(offer_id="offer-nowhere"), "offer_id", "exists"),
        (apply(offer_id=offer["offer_id"], planned_start=start.isoformat(),
               planned_end=(start + timedelta(days=4)).isoformat(), visitor_id=await other_visitor(p)),
         "offer_id", "host_capacity"),
        (apply(planned_start=taken["planned_start"], planned_end=taken["planned_end"]), "planned_start",
         "visitor_overlap"),
        (apply(purposes=["sightseeing"]), "purposes.0", None),
        (apply(purposes=[]), "purposes", None),
    ]
    await p.eventually(lambda: outboxes(p), lambda n: n == 0)
    before = await p.stored()
    for body, field, rule in applications:
        response = await p.post("/applications", body, p.token("visitor", subject="vera", organisation_id=body[
            "visitor_id"]))
        assert field in refused_fields(response), (field, response.text)
        if rule:
            assert rule in {e["rule"] for e in response.json()["errors"]}, response.text
    assert await p.stored() == before
    assert await outboxes(p) == 0


async def other_visitor(p) -> str:
    other = await p.enrol(p.token("visitor", subject="otto"), "BE", "Gent", ["visitor"])
    return other["organisation_id"]


async def test_every_endpoint_needs_a_bearer_token(programme):
    response = await programme.client.get("/applications")
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"
    forbidden = await programme.client.post("/partnerships", headers=programme.token("visitor"), json={
        "name": "x", "members": consortium(), "contact_email": "a@b.example"})
    assert forbidden.status_code == 403 and "programme_manager" in forbidden.json()["detail"]

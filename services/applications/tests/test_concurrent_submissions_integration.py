"""Submissions racing for the same place, over HTTP on the real database: a host's capacity
and a visitor's calendar hold however many requests arrive at once."""

from __future__ import annotations

import asyncio
from collections import Counter

VISITOR_CITIES = [("FR", "Lyon"), ("IT", "Turin"), ("ES", "Bilbao"), ("BE", "Ghent"), ("NL", "Utrecht"),
                  ("AT", "Graz"), ("PL", "Kraków"), ("PT", "Porto")]


def outcome(response) -> str:
    if response.status_code == 201:
        return "created"
    assert response.status_code == 422, response.text
    return response.json()["errors"][0]["rule"]


async def test_eight_visitors_racing_for_an_offer_of_two_places(programme, quiet):
    p = programme
    ht = p.token("host", subject="hans")
    _, call = await p.partnership_and_call()
    host = await p.enrol(ht, "DE", "Berlin", ["host"])
    start = quiet(21)
    offer = await p.publish_offer(ht, host, start, capacity=2, title="Hydrogen valley",
                                  ecosystem="renewable_energy", language="en")
    visitors = []
    for n, (country, city) in enumerate(VISITOR_CITIES):
        vt = p.token("visitor", subject=f"visitor-{n}")
        visitors.append((vt, await p.enrol(vt, country, city, ["visitor"])))

    responses = await asyncio.gather(*(
        p.post("/applications", p.application_body(call, visitor, host, start, offer_id=offer["offer_id"]), vt)
        for vt, visitor in visitors))

    assert Counter(outcome(r) for r in responses) == {"created": 2, "host_capacity": 6}
    assert await p.db.applications.count_documents({"offer_id": offer["offer_id"]}) == 2
    assert await p.db.locks.count_documents({}) == 0


async def test_one_visitor_racing_to_five_hosts_on_the_same_dates(programme, quiet):
    p = programme
    vt = p.token("visitor", subject="vera")
    _, call = await p.partnership_and_call()
    visitor = await p.enrol(vt, "FR", "Lyon", ["visitor"])
    hosts = [await p.enrol(p.token("host", subject=f"host-{n}"), "DE", city, ["host"])
             for n, city in enumerate(["Berlin", "Munich", "Hamburg", "Cologne", "Dresden"])]
    start = quiet(28)

    responses = await asyncio.gather(*(p.post("/applications", p.application_body(call, visitor, host, start), vt)
                                       for host in hosts))

    assert Counter(outcome(r) for r in responses) == {"created": 1, "visitor_overlap": 4}
    assert await p.db.applications.count_documents({"visitor_id": visitor["organisation_id"]}) == 1


async def test_a_request_repeated_while_in_flight_gets_its_first_result(programme, quiet):
    p = programme
    vt, _, _, call, visitor, host = await p.vera_and_hans()
    body = p.application_body(call, visitor, host, quiet(35))

    responses = await asyncio.gather(*(p.post("/applications", body, {"Idempotency-Key": "retry-9", **vt})
                                       for _ in range(5)))

    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert len({r.json()["application_id"] for r in responses}) == 1
    assert await p.db.applications.count_documents({}) == 1

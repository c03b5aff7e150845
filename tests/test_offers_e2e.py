"""Issue 13 (g), offers: the host edits its offer (window, capacity, description) and withdraws
it, over applications and assessment as running processes on the real broker and database.
An offer's capacity is how many visitors the host receives at once: both services count the
places of exchanges overlapping in time (applications at submission, assessment's host_capacity
rule at approval), with the capacity the host set last; a withdrawn offer takes no new application,
is found no more, and cannot change, while the exchange made through it stays."""

from __future__ import annotations


import httpx
import pytest

from cx_shared.events.applications import OfferUpdated, OfferWithdrawn
from cx_shared.testing.kafka import TopicWatcher, topic_names, wait_consumed
from cx_shared.topics import APPLICATIONS, consumer_group
from tests.journey import Journey, next_monday

pytestmark = pytest.mark.infra


@pytest.fixture
def system(run_service):
    return {name: run_service(name) for name in ("applications", "assessment")}


def call(method: str, url: str, headers: dict, body: dict | None = None) -> httpx.Response:
    return httpx.request(method, url, json=body, headers=headers, timeout=30)


def capacity_outcome(assessment: str, journey: Journey, application_id: str) -> dict:
    """Assessment's host_capacity outcome of an application: passed or not, and why."""
    book = call("GET", f"{assessment}/calls/{journey.call['call_id']}", journey.manager).json()
    entry = next(e for e in book["entries"] if e["application_id"] == application_id)
    return next(o for o in entry["outcomes"] if o["rule"] == "host_capacity")


def refused_rules(response: httpx.Response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["field"], e["rule"]) for e in response.json()["errors"]}


async def test_issue_13g_offers_are_edited_and_withdrawn(system, infra, namespace, token):
    apps, assessment = system["applications"].url, system["assessment"].url
    journey = Journey(apps, token)
    journey.open_call()
    journey.enrol_pair(confirm=False)  # no notifications here
    visitors = [(journey.visitor, journey.visitor_headers)]
    for n, (country, city) in enumerate((("PT", "Lisbon"), ("IT", "Rome"), ("LT", "Vilnius"), ("FR", "Lyon"))):
        subject = f"visitor-{n}-{journey.suffix}"
        org = journey.enrol("visitor", subject, country, city, f"v{n}-{journey.suffix}@example.eu", "en")
        visitors.append((org, token("visitor", subject=subject, organisation_id=org["organisation_id"])))
    offer = journey.post("/offers", {
        "host_id": journey.host["organisation_id"], "title": "Pilot line visit", "ecosystem": "electronics",
        "window_start": str(next_monday(20)), "window_end": str(next_monday(150)), "capacity": 1},
        journey.host_headers)
    url = f"{apps}/offers/{offer['offer_id']}"

    # One place, one visitor at a time: the first takes it for its dates; a second on the same
    # dates is refused at once, naming the rule; on other dates it gets the place again, and
    # assessment's rule says it knows the one place and counts those held at once.
    first = journey.try_submit(*visitors[0], 0, offer_id=offer["offer_id"]).json()["application_id"]
    await journey.wait_status(first, "approved", headers=journey.manager)
    assert ("offer_id", "host_capacity") in refused_rules(
        journey.try_submit(*visitors[1], 0, offer_id=offer["offer_id"]))
    second = journey.try_submit(*visitors[1], 2, offer_id=offer["offer_id"]).json()["application_id"]
    await journey.wait_status(second, "approved", headers=journey.manager)
    outcome = capacity_outcome(assessment, journey, second)
    assert outcome["passed"] and "0 of 1 places taken at once" in outcome["reason"], outcome

    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watch:
        # Edited by its host against its revision: three places, a later window, a description.
        other_host = token("host", subject="someone-else")
        assert call("PATCH", url, other_host, {"revision": 1, "capacity": 3}).status_code == 403
        refused = call("PATCH", url, journey.host_headers, {"revision": 1, "window_end": str(next_monday(10))})
        assert refused.status_code == 422 and ("window_end", "end_after_start") in {
            (e["field"], e["rule"]) for e in refused.json()["errors"]}
        edited = call("PATCH", url, journey.host_headers, {"revision": 1, "capacity": 3,
                                                           "window_end": str(next_monday(170)),
                                                           "description": "Now three visitors at once."})
        assert edited.status_code == 200, edited.text
        assert (edited.json()["capacity"], edited.json()["revision"]) == (3, 2)
        assert call("PATCH", url, journey.host_headers, {"revision": 1, "capacity": 2}).status_code == 409
        await watch.wait_for(lambda: watch.of_type(OfferUpdated, offer["offer_id"]), what="offer.updated")
        await wait_consumed(infra.kafka, [consumer_group("assessment", namespace)],
                            topic_names(namespace, APPLICATIONS))

        # Both count the new capacity: a third visitor gets a place beside the first, at once.
        third = journey.try_submit(*visitors[2], 0, offer_id=offer["offer_id"]).json()["application_id"]
        await journey.wait_status(third, "approved", headers=journey.manager)
        outcome = capacity_outcome(assessment, journey, third)
        assert outcome["passed"] and "1 of 3 places taken at once" in outcome["reason"], outcome

        # Assessment's rule refuses by the same count: the call's rule set gives the offer two places
        # (applications still allows three), and a fourth on the same dates finds both taken.
        rules = call("GET", f"{assessment}/calls/{journey.call['call_id']}", journey.manager).json()
        rules = [r if r["rule"] != "host_capacity" else {**r, "params": {"offer_capacities": {offer["offer_id"]: 2}}}
                 for r in rules["policies"][-1]["rules"]]
        changed = call("PUT", f"{assessment}/calls/{journey.call['call_id']}/rule-set", journey.manager,
                       {"rules": rules})
        assert changed.status_code == 200, changed.text
        fourth = journey.try_submit(*visitors[4], 0, offer_id=offer["offer_id"]).json()["application_id"]
        await journey.wait_status(fourth, "rejected", headers=journey.manager)
        outcome = capacity_outcome(assessment, journey, fourth)
        assert not outcome["passed"] and "2 of 2 places taken at once" in outcome["reason"], outcome

        # Withdrawn: found no more, no new application, no change; the exchanges made stay.
        withdrawn = call("POST", f"{url}/withdrawal", journey.host_headers, {"reason": "the pilot line moves"})
        assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
        await watch.wait_for(lambda: watch.of_type(OfferWithdrawn, offer["offer_id"]), what="offer.withdrawn")
    assert call("POST", f"{url}/withdrawal", journey.host_headers, {}).status_code == 409
    assert call("PATCH", url, journey.host_headers, {"revision": 3, "capacity": 5}).status_code == 409
    found = call("GET", f"{apps}/offers", journey.host_headers).json()["items"]
    assert offer["offer_id"] not in [o["offer_id"] for o in found]
    late = journey.try_submit(*visitors[3], 6, offer_id=offer["offer_id"])
    assert late.status_code == 422 and ("offer_id", "offer_withdrawn") in {
        (e["field"], e["rule"]) for e in late.json()["errors"]}
    assert {journey.status(a, journey.manager)["status"] for a in (first, second, third)} == {"approved"}

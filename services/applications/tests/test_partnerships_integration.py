"""Issue 13 (g), partnerships: formed, listed, read and updated over HTTP under the consortium
rule (at least 3 legal entities in at least 3 eligible countries, one of them in a less developed
or in transition region), the service a real process on the real broker and database."""

from __future__ import annotations

from cx_shared.events.applications import PartnershipUpdated
from cx_shared.testing.consortium import consortium
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS

FR, DE, PL = ("Optitec", "FR", "transition"), ("Bavaria Photonics", "DE", "more_developed"), \
    ("Lodz Photonics", "PL", "less_developed")


def refused_rules(response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["field"], e["rule"]) for e in response.json()["errors"]}


async def test_issue_13g_partnerships_listed_read_and_updated_under_the_consortium_rule(programme, infra, namespace):
    p = programme
    # The consortium rule at formation: each broken part named, nothing stored.
    cases = {
        (FR, DE): ("members", "consortium_legal_entities"),
        (FR, DE, ("Berlin Optics", "DE", "transition")): ("members", "consortium_countries"),
        (FR[:2] + ("more_developed",), DE, PL[:2] + ("more_developed",)): ("members", "consortium_cohesion_region"),
        (FR, DE, ("Boston Optics", "US", "less_developed")): ("members[2].country", "eligible_country"),
        (FR, DE, ("OPTITEC ", "PL", "less_developed")): ("members", "consortium_legal_entities"),
    }
    for members, rule in cases.items():
        response = await p.post("/partnerships", {"name": "Too small", "members": consortium(*members)})
        assert rule in refused_rules(response), (members, response.text)
    assert (await p.stored())["partnerships"] == 0

    first = await p.ok("POST", "/partnerships", {"name": "Photonics4Industry", "members": consortium(FR, DE, PL)},
                       status=201)
    second = await p.ok("POST", "/partnerships", {"name": "GreenTech 2.0", "members": consortium()}, status=201)
    a, b = first["partnership_id"], second["partnership_id"]
    assert first["revision"] == 1 and first["countries"] == ["FR", "DE", "PL"]
    assert first["member_clusters"] == ["Optitec", "Bavaria Photonics", "Lodz Photonics"]

    # Listed by scope: the programme-wide manager sees all, staff their own, others none.
    manager_a = p.token("programme_manager", subject="ma", partnership_ids=(a,))
    assessor_b = p.token("assessor", subject="ab", partnership_ids=(b,))
    visitor = p.token("visitor", subject="vera", partnership_ids=(a,))
    names = lambda items: sorted(i["partnership_id"] for i in items)  # noqa: E731
    assert names(await p.ok("GET", "/partnerships")) == sorted([a, b])
    assert names(await p.ok("GET", "/partnerships", headers=manager_a)) == [a]
    assert names(await p.ok("GET", "/partnerships", headers=assessor_b)) == [b]
    assert await p.ok("GET", "/partnerships", headers=visitor) == []
    read = await p.ok("GET", f"/partnerships/{a}", headers=manager_a)
    assert read["members"][2] == {"legal_name": "Lodz Photonics", "country": "PL", "region_category": "less_developed"}

    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watch:
        # Only its own manager (or a programme-wide one) changes a partnership.
        manager_b = p.token("programme_manager", subject="mb", partnership_ids=(b,))
        response = await p.client.patch(f"/partnerships/{a}", json={"revision": 1, "name": "Mine"}, headers=manager_b)
        assert response.status_code == 403, response.text
        # An update that would break the consortium rule is refused, naming it; nothing changes.
        response = await p.client.patch(f"/partnerships/{a}", headers=manager_a,
                                        json={"revision": 1, "members": consortium(FR, DE, ("Munich", "DE", "transition"))})
        assert ("members", "consortium_countries") in refused_rules(response)
        assert (await p.ok("GET", f"/partnerships/{a}"))["revision"] == 1

        slovenia = ("Ljubljana Tech", "SI", "transition")
        updated = await p.ok("PATCH", f"/partnerships/{a}", {"revision": 1, "name": "Photonics4Industry 2.0",
                                                             "members": consortium(FR, DE, PL, slovenia)}, manager_a)
        assert updated["revision"] == 2 and updated["name"] == "Photonics4Industry 2.0"
        assert updated["countries"] == ["FR", "DE", "PL", "SI"] and len(updated["members"]) == 4
        assert updated["ecosystems"] == first["ecosystems"]  # left out: kept
        stale = await p.client.patch(f"/partnerships/{a}", json={"revision": 1, "name": "Old"}, headers=manager_a)
        assert stale.status_code == 409, stale.text

        event = (await watch.wait_for(lambda: watch.of_type(PartnershipUpdated, a), what="partnership.updated"))[0]
        assert event.data["revision"] == 2 and event.data["partnership_name"] == "Photonics4Industry 2.0"
        assert [m["country"] for m in event.data["members"]] == ["FR", "DE", "PL", "SI"]
    assert (await p.ok("GET", f"/partnerships/{a}", headers=visitor))["revision"] == 2

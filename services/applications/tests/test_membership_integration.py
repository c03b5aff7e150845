"""Issue 23 over real HTTP, the real broker and database: an organisation belongs to the
partnerships it joined by its own act, never to those of the calls someone applied to naming
it; an exchange gives its partnership's staff that exchange only; staff roles count only in
the partnership that holds them; a partnership's contact e-mail is for its own staff."""

from __future__ import annotations

from cx_shared.events.applications import MembershipJoined, MembershipLeft
from cx_shared.events.assessment import ApplicationApproved, HostAccepted
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS

from applications.storage import ORGANISATIONS


async def attack(p, later):
    """Hans's host organisation H is in partnership A's world; mallory, a visitor, applies to a
    call of partnership B naming H, and withdraws. B's manager mo is a manager of B only."""
    (ptn_a, _), (ptn_b, call_b) = await p.partnership_and_call(), await p.partnership_and_call()
    hans, mallory = p.token("host", subject="hans"), p.token("visitor", subject="mallory")
    host = await p.enrol(hans, "DE", "Berlin", ["host"])
    visitor = await p.enrol(mallory, "FR", "Lyon", ["visitor"])
    application = await p.ok("POST", "/applications", p.application_body(call_b, visitor, host, later(30)), mallory,
                             status=201)
    await p.ok("POST", f"/applications/{application['application_id']}/withdraw", {"reason": "done"}, mallory)
    mo = p.token("programme_manager", subject="mo", partnership_ids=(ptn_b["partnership_id"],))
    return ptn_a, ptn_b, hans, host, mo


async def test_applying_naming_a_host_gives_the_calls_partnership_no_right_over_it(programme, later):
    p = programme
    _, _, _, host, mo = await attack(p, later)
    path = f"/organisations/{host['organisation_id']}"
    hijack = await p.client.patch(path, json={"revision": 1, "contact": {"name": "Mo", "email": "mo@evil.example"}},
                                  headers=mo)
    assert hijack.status_code in (403, 404), hijack.text
    offer = {"host_id": host["organisation_id"], "title": "Smart grids", "ecosystem": "digital",
             "window_start": later(60).isoformat(), "window_end": later(63).isoformat(), "capacity": 1}
    assert (await p.post("/offers", offer, mo)).status_code == 403
    assert (await p.post("/personal-data/exports", {"subject_id": host["organisation_id"]}, mo)).status_code == 403
    assert "contact" not in await p.ok("GET", path, headers=mo)  # the host never accepted anything
    stored = await p.db[ORGANISATIONS].find_one({"_id": host["organisation_id"]})
    assert stored["contact"]["email"] == "contact@berlin.example" and stored["revision"] == 1
    assert not stored.get("memberships") and "partnership_ids" not in stored
    assert await p.db.offers.count_documents({}) == 0


async def test_an_organisation_joins_and_leaves_by_its_own_act_and_its_managers_follow(programme, infra, later):
    p = programme
    ptn_a, ptn_b, hans, host, mo = await attack(p, later)
    organisation_id, b = host["organisation_id"], ptn_b["partnership_id"]
    path = f"/organisations/{organisation_id}/partnerships"
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        for stranger in (mo, p.pm, p.token("visitor", subject="mallory")):  # nobody joins it for it
            assert (await p.post(path, {"partnership_id": b}, stranger)).status_code == 403
        assert (await p.post(path, {"partnership_id": "ptn-none"}, hans)).status_code == 422
        assert (await p.post(path, {"partnership_id": "ptn.x"}, hans)).status_code == 422
        joined = await p.ok("POST", path, {"partnership_id": b}, hans, status=201)
        assert joined["memberships"][b]["state"] == "joined" and joined["memberships"][b]["by"] == "hans"
        assert (await p.post(path, {"partnership_id": b}, hans)).status_code == 409
        changed = await p.ok("PATCH", f"/organisations/{organisation_id}",
                             {"revision": 1, "city": "Potsdam"}, mo)  # now B's manager acts for it
        assert changed["city"] == "Potsdam"
        manager_a = p.token("programme_manager", subject="ma", partnership_ids=(ptn_a["partnership_id"],))
        assert (await p.client.patch(f"/organisations/{organisation_id}", json={"revision": 2, "city": "Bonn"},
                                     headers=manager_a)).status_code == 403

        assert (await p.client.delete(f"{path}/{b}", headers=mo)).status_code == 403  # its own act only
        left = await p.ok("DELETE", f"{path}/{b}", headers=hans)
        assert left["memberships"] == {}
        assert (await p.client.delete(f"{path}/{b}", headers=hans)).status_code == 404
        refused = await p.client.patch(f"/organisations/{organisation_id}", json={"revision": 2, "city": "Bonn"},
                                       headers=mo)
        assert refused.status_code == 403, refused.text
        events = await watcher.wait_for(lambda: watcher.of_type(MembershipJoined, organisation_id)
                                        and watcher.of_type(MembershipLeft, organisation_id), 30, "the membership")
        assert events


async def test_exchange_staff_read_the_visitors_contact_and_the_hosts_once_it_accepted(programme, infra, later):
    p = programme
    vt, ht, partnership, call, visitor, host = await p.vera_and_hans()
    application = await p.ok("POST", "/applications", p.application_body(call, visitor, host, later(30)), vt,
                             status=201)
    assessor = p.token("assessor", subject="ann", partnership_ids=(partnership["partnership_id"],))
    other = p.token("assessor", subject="otto", partnership_ids=("ptn-other",))

    async def contact(org: dict, who: dict) -> bool:
        return "contact" in await p.ok("GET", f"/organisations/{org['organisation_id']}", headers=who)
    assert await contact(visitor, assessor) and not await contact(host, assessor)
    assert not await contact(visitor, other)
    for event_cls, fields in ((ApplicationApproved, {"reasons": ["eligible"]}),
                              (HostAccepted, {"host_id": host["organisation_id"]})):
        await p.inject(infra.kafka, application, event_cls, **fields)
    await p.eventually(lambda: contact(host, assessor), bool)
    listed = {o["organisation_id"]: o for o in await p.ok("GET", "/organisations", headers=assessor)}
    assert "contact" in listed[host["organisation_id"]] and "contact" in listed[visitor["organisation_id"]]
    assert "owner" in listed[host["organisation_id"]]  # the private fields go with the contact
    assert not await contact(host, other)
    # an exchange is no membership: the partnership's manager does not act for its parties
    manager = p.token("programme_manager", subject="mp", partnership_ids=(partnership["partnership_id"],))
    refused = await p.client.patch(f"/organisations/{host['organisation_id']}", json={"revision": 1, "city": "Bonn"},
                                   headers=manager)
    assert refused.status_code == 403, refused.text


async def test_a_partnerships_contact_email_is_for_its_own_staff(programme):
    p = programme
    (ptn_a, _), (ptn_b, _) = await p.partnership_and_call(), await p.partnership_and_call()
    a, b = ptn_a["partnership_id"], ptn_b["partnership_id"]
    own = (p.pm, p.token("assessor", subject="ann", partnership_ids=(a,)))
    others = (p.token("programme_manager", subject="mo", partnership_ids=(b,)), p.token("visitor", subject="vera"))
    for who in own:
        assert (await p.ok("GET", f"/partnerships/{a}", headers=who))["contact_email"] == "office@greentech.example"
    for who in others:
        shown = await p.ok("GET", f"/partnerships/{a}", headers=who)
        assert "contact_email" not in shown and shown["name"] == "GreenTech 2.0"


async def test_a_role_counts_only_in_the_partnership_that_holds_it(programme, infra, later):
    """An assessor of A who is a programme manager and grant officer of B: no manager, no officer in A."""
    p = programme
    vt, _, partnership, call, visitor, host = await p.vera_and_hans()
    (ptn_b, _) = await p.partnership_and_call()
    a, b = partnership["partnership_id"], ptn_b["partnership_id"]
    mixed = p.token("assessor", "programme_manager", "grant_officer", subject="mix",
                    partnership_roles={a: ("assessor",), b: ("programme_manager", "grant_officer")})
    application = await p.ok("POST", "/applications", p.application_body(call, visitor, host, later(30)), vt,
                             status=201)
    exchange = f"/applications/{application['application_id']}"
    assert (await p.get(exchange, mixed)).status_code == 200  # as A's assessor
    before = await p.stored()
    refused = {
        "close the call": await p.post(f"/calls/{call['call_id']}/closure", {"reason": "x"}, mixed),
        "cancel the call": await p.post(f"/calls/{call['call_id']}/cancellation", {"reason": "x"}, mixed),
        "change the call": await p.client.patch(f"/calls/{call['call_id']}", json={"revision": 1, "title": "x"},
                                                headers=mixed),
        "publish a call": await p.post("/calls", {"partnership_id": a, "title": "x", "opens_on": later(5).isoformat(),
                                                  "closes_on": later(50).isoformat(), "budget_cents": 1}, mixed),
        "change the partnership": await p.client.patch(f"/partnerships/{a}", json={"revision": 1, "name": "x"},
                                                       headers=mixed),
        "cancel the exchange": await p.post(f"{exchange}/cancel", {"reason": "x"}, mixed),
        "close the exchange": await p.post(f"{exchange}/close", {"reason": "x"}, mixed),
        "review its report": await p.post(f"{exchange}/report/review", {"accept": True}, mixed),
        "read A's indicators": await p.get("/indicators", mixed, params={"partnership_id": a}),
    }
    assert {what: r.status_code for what, r in refused.items() if r.status_code != 403} == {}
    assert await p.stored() == before
    assert (await p.ok("GET", exchange, headers=mixed))["status"] == "submitted"
    assert (await p.ok("GET", f"/calls/{call['call_id']}", headers=mixed)).get("status") is None
    # in B the same token is the manager it is
    await p.ok("PATCH", f"/partnerships/{b}", {"revision": 1, "name": "GreenTech B"}, mixed)
    await p.ok("GET", "/indicators", headers=mixed, params={"partnership_id": b})

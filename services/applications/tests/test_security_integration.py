"""Issue 12 over real HTTP, the real broker and database: organisations' tenancy, who reads
which timeline entries, bounded input, the body limit, the fuzzing 500s, the dashboard
without a token in its URL, and the event size bound before the outbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cx_shared.envelope import Envelope
from cx_shared.errors import TooLarge
from cx_shared.events.applications import OrganisationEnrolled
from cx_shared.events.assessment import ApplicationApproved, ApplicationScored, AssessmentClaimed, ConflictDeclared
from cx_shared.outbox import MAX_EVENT_BYTES
from cx_shared.testing.consortium import consortium
from cx_shared.testing.fixtures import LOG_DIR

from applications.storage import ORGANISATIONS, Storage

STAFF_NAMES = ("assessor-ann", "assessor-bob", "pm-zoe", "my cousin")


async def two_partnerships(p, later):
    """Partnership A: vera (visitor) applied to hans (host); partnership B: vicky to hugo. Each
    of them joined the partnership it applied in (applying joins nothing); a manager and an
    assessor of each; hella's host organisation is a member of no partnership."""
    (ptn_a, call_a), (ptn_b, call_b) = await p.partnership_and_call(), await p.partnership_and_call()
    people = {name: p.token(role, subject=name) for name, role in
              (("vera", "visitor"), ("hans", "host"), ("vicky", "visitor"), ("hugo", "host"), ("hella", "host"))}
    orgs = {"vera": await p.enrol(people["vera"], "FR", "Lyon", ["visitor"]),
            "hans": await p.enrol(people["hans"], "DE", "Berlin", ["host"]),
            "vicky": await p.enrol(people["vicky"], "FR", "Grenoble", ["visitor"]),
            "hugo": await p.enrol(people["hugo"], "DE", "Hamburg", ["host"]),
            "hella": await p.enrol(people["hella"], "DE", "Munich", ["host"])}
    for name, ptn in (("vera", ptn_a), ("hans", ptn_a), ("vicky", ptn_b), ("hugo", ptn_b)):
        await p.ok("POST", f"/organisations/{orgs[name]['organisation_id']}/partnerships",
                   {"partnership_id": ptn["partnership_id"]}, people[name], status=201)
    apps = {}
    for visitor, host, call, weeks in (("vera", "hans", call_a, 30), ("vicky", "hugo", call_b, 40)):
        apps[visitor] = await p.ok("POST", "/applications", p.application_body(call, orgs[visitor], orgs[host],
                                                                                later(weeks)),
                                   people[visitor], status=201)
    staff = {f"{role}_{side}": p.token(role, subject=f"{role}-{side}", partnership_ids=(ptn["partnership_id"],))
             for side, ptn in (("a", ptn_a), ("b", ptn_b)) for role in ("programme_manager", "assessor")}
    return people, orgs, apps, staff


async def test_a_manager_acts_only_for_the_organisations_of_his_partnerships(programme, later):
    p = programme
    people, orgs, _, staff = await two_partnerships(p, later)
    manager_a, assessor_a, assessor_b = staff["programme_manager_a"], staff["assessor_a"], staff["assessor_b"]
    org_path = f"/organisations/{orgs['vicky']['organisation_id']}"
    hijack = {"revision": 1, "contact": {"name": "Mallory", "email": "mallory@evil.example"}}
    refused = await p.client.patch(org_path, json=hijack, headers=manager_a)
    assert refused.status_code == 403, refused.text
    assert (await p.db[ORGANISATIONS].find_one({"_id": orgs["vicky"]["organisation_id"]}))["contact"]["email"] == \
        "contact@grenoble.example"
    changed = await p.ok("PATCH", f"/organisations/{orgs['vera']['organisation_id']}",
                         {"revision": 1, "contact": {"name": "Vera", "email": "vera@lyon.example"}}, manager_a)
    assert changed["contact"]["email"] == "vera@lyon.example"

    def offer_for(host: str) -> dict:
        return {"host_id": orgs[host]["organisation_id"], "title": "Smart grids", "ecosystem": "digital",
                "window_start": later(60).isoformat(), "window_end": later(63).isoformat(), "capacity": 1}
    for host in ("hugo", "hella"):  # another partnership's host; a host of no partnership yet
        response = await p.post("/offers", offer_for(host), manager_a)
        assert response.status_code == 403, (host, response.text)
    assert await p.db.offers.count_documents({}) == 0
    await p.ok("POST", "/offers", offer_for("hans"), manager_a, status=201)
    await p.ok("POST", "/offers", offer_for("hella"), people["hella"], status=201)  # its owner
    await p.ok("POST", "/offers", offer_for("hugo"), p.pm, status=201)  # a programme-wide manager

    async def contact_shown(org: str, who: dict) -> bool:
        return "contact" in await p.ok("GET", f"/organisations/{orgs[org]['organisation_id']}", headers=who)
    assert await contact_shown("vera", assessor_a) and await contact_shown("hans", assessor_a)
    assert not await contact_shown("vera", assessor_b) and not await contact_shown("hella", assessor_a)
    assert await contact_shown("vera", p.pm) and await contact_shown("vera", people["vera"])
    listed = {o["organisation_id"]: o for o in await p.ok("GET", "/organisations", headers=assessor_b)}
    assert "contact" in listed[orgs["vicky"]["organisation_id"]]
    assert "contact" not in listed[orgs["vera"]["organisation_id"]] and "owner" not in listed[
        orgs["vera"]["organisation_id"]]


async def test_visitors_and_hosts_read_the_timeline_without_staff_entries_or_identities(programme, infra, later):
    p = programme
    people, _, apps, staff = await two_partnerships(p, later)
    application = apps["vera"]
    for event_cls, fields in ((AssessmentClaimed, {"assessor": "assessor-ann"}),
                              (ConflictDeclared, {"assessor": "assessor-bob", "reason": "my cousin runs the host"}),
                              (ApplicationScored, {"assessor": "assessor-ann", "score": 81.5}),
                              (ApplicationApproved, {"reasons": ["eligible"], "overridden_by": "pm-zoe"})):
        await p.inject(infra.kafka, application, event_cls, **fields)
    path = f"/applications/{application['application_id']}"

    async def timeline(who: dict) -> list[dict]:
        return (await p.ok("GET", path, headers=who))["timeline"]
    for party in ("vera", "hans"):
        shown = await timeline(people[party])
        assert [e["event"] for e in shown] == ["application.submitted", "application.approved"], party
        assert shown[1]["actor"] == "the partnership"
        assert not [n for n in STAFF_NAMES if n in str(shown)], shown
    for member in (staff["assessor_a"], staff["programme_manager_a"], p.pm):
        shown = await timeline(member)
        assert {"assessment.claimed", "conflict.declared", "application.scored"} <= {e["event"] for e in shown}
        assert all(n in str(shown) for n in STAFF_NAMES)
    assert (await p.get(path, staff["assessor_b"])).status_code == 404  # staff of another partnership
    # what an action answers is the caller's view too
    withdrawn = await p.ok("POST", f"{path}/withdraw", {"reason": "ill"}, people["vera"])
    assert withdrawn["status"] == "withdrawn" and not [n for n in STAFF_NAMES if n in str(withdrawn)]


def refusal(response, status: int = 422) -> set[tuple[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {(e["field"], e["rule"]) for e in response.json()["errors"]}


async def test_oversized_duplicated_and_far_off_input_is_refused_and_stores_nothing(programme, later):
    p = programme
    vt, _, _, call, visitor, host = await p.vera_and_hans()
    before = await p.stored()
    org = p.organisation_body("FR", "Lyon", ["visitor"])
    cases = [
        ({**org, "legal_name": "x" * 301}, ("legal_name", "string_too_long")),
        ({**org, "ecosystems": ["digital", "digital"]}, ("ecosystems", "unique_items")),
        ({**org, "roles": ["visitor", "host", "visitor"]}, ("roles", "too_long")),
        ({**org, "legal_name": "nul\x00byte"}, ("legal_name", "string_pattern_mismatch")),
    ]
    for body, expected in cases:
        assert expected in refusal(await p.post("/organisations", body, vt)), expected
    too_many = {"name": "P", "members": consortium() * 34}
    assert ("members", "too_long") in refusal(await p.post("/partnerships", too_many))
    body = p.application_body(call, visitor, host, later(30), planned_end="9999-12-31")
    started = time.monotonic()
    assert ("planned_end", "less_than_equal") in refusal(await p.post("/applications", body, vt))
    body = p.application_body(call, visitor, host, later(30), planned_end="2099-12-31")  # within the bound
    assert ("planned_end", "within_call") in refusal(await p.post("/applications", body, vt))
    assert time.monotonic() - started < 2, "far-off dates are refused without counting their days"
    # the body limit, declared or chunked, on an API route and on the development token issuer
    big = b'{"legal_name": "' + b"x" * 70_000 + b'"}'
    for path in ("/organisations", "/dev/tokens"):
        declared = await p.client.post(path, content=big, headers={**vt, "content-type": "application/json"})
        assert ("body", "max_bytes") in refusal(declared, 413)

    async def chunks():
        for _ in range(100):
            yield b"x" * 1024
    chunked = await p.client.post("/organisations", content=chunks(), headers={**vt,
                                                                                 "content-type": "application/json"})
    assert ("body", "max_bytes") in refusal(chunked, 413)
    assert await p.stored() == before


async def test_the_fuzzing_500s_are_422s_naming_the_field(programme):
    p = programme
    vt = p.token("visitor", subject="vera")
    org = await p.enrol(vt, "FR", "Lyon", ["visitor"])
    assert ("query.page", "less_than_equal") in refusal(await p.get("/offers", params={"page": "5485724271802735616"}))
    path = f"/organisations/{org['organisation_id']}"
    for patch, field in (({"country": "00"}, "country"), ({"contact": None}, "contact"),
                         ({"roles": None}, "roles"), ({"organisation_type": None}, "organisation_type")):
        response = await p.client.patch(path, json={"revision": 1, **patch}, headers=vt)
        assert field in {f for f, _ in refusal(response)}, patch
    for bad in ("/organisations/%C3%A9t%C3%A9", "/applications/%E2%98%83", "/offers/" + "o" * 101,
                "/calls/a%00b", "/partnerships/%F0%9F%98%80"):
        assert refusal(await p.get(bad)), bad
    assert (await p.ok("GET", path, headers=vt))["revision"] == 1


async def test_the_dashboard_takes_no_token_in_its_url_and_access_logs_no_query(programme):
    p = programme
    token = p.pm["Authorization"].split(" ", 1)[1]
    assert (await p.client.get("/indicators/dashboard", params={"access_token": token})).status_code == 401
    assert (await p.client.get("/indicators/dashboard", headers=p.pm)).status_code == 200
    link = (await p.ok("POST", "/indicators/dashboard/links", status=201))["url"]
    assert (await p.client.get(link)).status_code == 200
    assert (await p.client.get(link)).status_code == 401  # once only
    visitor_link = await p.client.post("/indicators/dashboard/links", headers=p.token("visitor"))
    assert visitor_link.status_code == 403
    marker = "query-marker-7d1c"
    await p.client.get("/organisations", params={"country": "FR", marker: "x"}, headers=p.pm)
    log = LOG_DIR / f"applications-{p.url.rsplit(':', 1)[1]}.log"
    text = await p.eventually(lambda: _read(log), lambda t: '"GET /organisations HTTP' in t)
    assert marker not in text and "link=" not in text and "access_token" not in text


async def _read(path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def enrolled(data: dict) -> Envelope:
    event = OrganisationEnrolled(organisation_id="org-big", roles=["visitor"], legal_name="Big", country="FR",
                                 city="Lyon", organisation_type="cluster_organisation",
                                 contact={"name": "C", "email": "c@lyon.example"}, owner="vera")
    envelope = Envelope.wrap(event, source="/clusterxchange/applications", subject="org-big")
    return envelope.model_copy(update={"data": {**envelope.data, **data}})


async def test_an_oversized_event_is_refused_before_the_outbox_and_nothing_stored(mongo_db):
    storage = Storage(mongo_db)
    await storage.init()
    oversized = enrolled({"legal_name": "x" * (MAX_EVENT_BYTES + 1)})
    with pytest.raises(TooLarge, match="max|more than"):
        await storage.create(ORGANISATIONS, {"_id": "org-big", "at": datetime.now(UTC)}, oversized)
    assert await mongo_db[ORGANISATIONS].count_documents({}) == 0
    assert await storage.create(ORGANISATIONS, {"_id": "org-big"}, enrolled({}))  # a normal one goes in
    assert len((await mongo_db[ORGANISATIONS].find_one({"_id": "org-big"}))["outbox"]) == 1

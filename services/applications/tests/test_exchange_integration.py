"""Over HTTP and the real broker and database: idempotent submission, object-level
authorization, transitions refused with 409 (never half done), offers and enrolment updates."""

from __future__ import annotations

import json
from datetime import timedelta

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationCancelled, ApplicationWithdrawn, OrganisationUpdatedV2
from cx_shared.events.assessment import ApplicationApproved, ApplicationRejected, HostAccepted
from cx_shared.events.grants import GrantAgreementAccepted, GrantCommitted
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, topic_names
from cx_shared.query_audit import scans
from cx_shared.topics import APPLICATIONS

from .conftest import running_programme


async def setup(p, later):
    return await p.vera_and_hans()


async def assessed(p, infra, application: dict, event_cls, **fields) -> None:
    """Inject an assessment decision as the assessment service would publish it, and wait for it."""
    event = event_cls(application_id=application["application_id"], call_id=application["call_id"], **fields)
    source = "/clusterxchange/" + event.topic.producer
    envelope = Envelope.wrap(event, source=source, subject=application["application_id"])
    await publish_envelope(infra.kafka, envelope, p.namespace)
    await p.eventually(lambda: p.db.applications.find_one({"_id": application["application_id"]}),
                       lambda doc: envelope.id in doc["processed"])


async def test_the_same_idempotency_key_returns_the_first_result(programme, later):
    p = programme
    vt, _, _, call, visitor, host = await setup(p, later)
    body = p.application_body(call, visitor, host, later(30))
    key = {"Idempotency-Key": "submit-7f3a", **vt}
    first = await p.ok("POST", "/applications", body, key, status=201)
    again = await p.ok("POST", "/applications", body, key, status=201)
    assert again["application_id"] == first["application_id"]
    assert await p.db.applications.count_documents({}) == 1
    other = await p.post("/applications", {**body, "objectives": "something else"}, key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    # without a key the same body is a new submission, refused: the visitor is already away then
    clash = await p.post("/applications", body, vt)
    assert clash.status_code == 422 and clash.json()["errors"][0]["rule"] == "visitor_overlap"


async def test_visitors_see_their_own_hosts_theirs_staff_their_partnerships(programme, later):
    p = programme
    vt, ht, partnership, call, visitor, host = await setup(p, later)
    application = await p.ok("POST", "/applications", p.application_body(call, visitor, host, later(30)), vt,
                             status=201)
    path = f"/applications/{application['application_id']}"
    other_visitor = p.token("visitor", subject="mallory")
    await p.enrol(other_visitor, "IT", "Turin", ["visitor"])
    other_host = p.token("host", subject="hugo")
    await p.enrol(other_host, "ES", "Bilbao", ["host"])
    for stranger in (other_visitor, other_host, p.token("assessor", subject="a2", partnership_ids=("ptn-other",))):
        response = await p.get(path, stranger)
        assert response.status_code == 404 and response.json()["title"] == "Not found"
        assert await p.ok("GET", "/applications", headers=stranger) == []
    by_org_claim = p.token("visitor", subject="colleague", organisation_id=visitor["organisation_id"])
    for allowed in (vt, by_org_claim, ht, p.pm,
                    p.token("assessor", subject="a1", partnership_ids=(partnership["partnership_id"],))):
        assert (await p.ok("GET", path, headers=allowed))["application_id"] == application["application_id"]
        assert [a["application_id"] for a in await p.ok("GET", "/applications", headers=allowed)] == \
            [application["application_id"]]
    # filters
    for query, hits in (({"status": "submitted"}, 1), ({"status": "approved"}, 0), ({"country": "DE"}, 1),
                        ({"country": "IT"}, 0), ({"call_id": call["call_id"]}, 1), ({"call_id": "x"}, 0),
                        ({"partnership_id": partnership["partnership_id"]}, 1), ({"ecosystem": "digital"}, 1),
                        ({"ecosystem": "tourism"}, 0)):
        assert len(await p.ok("GET", "/applications", params=query)) == hits, query
    # contact details are personal data: not for a stranger
    assert "contact" not in await p.ok("GET", f"/organisations/{visitor['organisation_id']}", headers=other_host)
    assert "contact" in await p.ok("GET", f"/organisations/{visitor['organisation_id']}", headers=vt)
    # a host may read but not withdraw
    assert (await p.post(f"{path}/withdraw", {}, ht)).status_code == 403


async def test_illegal_transitions_are_refused_with_409_and_change_nothing(programme, infra, later):
    p = programme
    vt, _, _, call, visitor, host = await setup(p, later)

    def submit(weeks: int):
        return p.ok("POST", "/applications", p.application_body(call, visitor, host, later(7 * weeks)), vt,
                    status=201)
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        withdrawn = await submit(3)
        done = await p.ok("POST", f"/applications/{withdrawn['application_id']}/withdraw", {"reason": "ill"}, vt)
        assert done["status"] == "withdrawn" and done["timeline"][-1]["summary"] == "Withdrawn by the visitor: ill"
        assert done["timeline"][-1]["actor"] == "vera"
        before = await p.db.applications.find_one({"_id": withdrawn["application_id"]})
        again = await p.post(f"/applications/{withdrawn['application_id']}/withdraw", {}, vt)
        assert again.status_code == 409
        assert "withdrawn cannot become withdrawn" in again.json()["detail"]

        rejected = await submit(5)
        await assessed(p, infra, rejected, ApplicationRejected, reasons=["same country"])
        refused = await p.post(f"/applications/{rejected['application_id']}/withdraw", {}, vt)
        assert refused.status_code == 409 and "rejected cannot become withdrawn" in refused.json()["detail"]
        assert (await p.post(f"/applications/{rejected['application_id']}/cancel", {"reason": "x"})).status_code == 409

        approved = await submit(7)
        await assessed(p, infra, approved, ApplicationApproved)
        cancelled = await p.ok("POST", f"/applications/{approved['application_id']}/cancel",
                               {"reason": "the host closed its lab"})
        assert cancelled["status"] == "cancelled"
        await watcher.wait_for(lambda: watcher.of_type(ApplicationCancelled, approved["application_id"]), 30,
                               "ApplicationCancelled")
        await watcher.wait_for(lambda: watcher.of_type(ApplicationWithdrawn), 30, "ApplicationWithdrawn")
    after = await p.db.applications.find_one({"_id": withdrawn["application_id"]})
    assert (after["revision"], after["milestones"]) == (before["revision"], before["milestones"])
    assert len(watcher.of_type(ApplicationWithdrawn)) == 1  # the refused withdrawal published nothing
    statuses = {a["application_id"]: a["status"] for a in await p.ok("GET", "/applications", headers=vt)}
    assert statuses == {withdrawn["application_id"]: "withdrawn", rejected["application_id"]: "rejected",
                        approved["application_id"]: "cancelled"}


async def test_offers_are_searched_and_paginated(programme, later):
    p = programme
    ht = p.token("host", subject="hans")
    berlin = await p.enrol(ht, "DE", "Berlin", ["host"])
    riga = await p.enrol(ht, "LV", "Riga", ["host", "visitor"])
    start = later(14)
    for i, (host, ecosystem, title) in enumerate([(berlin, "digital", "AI testing lab"),
                                                  (berlin, "digital", "Cybersecurity range"),
                                                  (riga, "digital", "Baltic AI hub"),
                                                  (riga, "textile", "Smart textiles")]):
        window_start = start + timedelta(days=30 * i)
        await p.ok("POST", "/offers", {"host_id": host["organisation_id"], "title": title, "ecosystem": ecosystem,
                                       "window_start": window_start.isoformat(),
                                       "window_end": (window_start + timedelta(days=20)).isoformat(),
                                       "capacity": 1, "language": "en"}, ht, status=201)

    async def titles(**params):
        page = await p.ok("GET", "/offers", params=params, headers=p.token("visitor"))
        assert "total" not in page, "no count of every match on every call (issue 23)"
        return [o["title"] for o in page["items"]], page["next"]
    assert await titles(ecosystem="digital") == (["AI testing lab", "Cybersecurity range", "Baltic AI hub"], None)
    assert await titles(country="LV") == (["Baltic AI hub", "Smart textiles"], None)
    assert await titles(q="ai ") == (["AI testing lab", "Baltic AI hub"], None)
    assert await titles(q="BALTIC ai") == (["Baltic AI hub"], None)
    assert await titles(q="a") == ([], None)  # no word of two letters: nothing has it
    assert await titles(start=(start + timedelta(days=35)).isoformat(),
                        end=(start + timedelta(days=40)).isoformat()) == (["Cybersecurity range"], None)
    assert await titles(size=2, page=2) == (["Baltic AI hub", "Smart textiles"], None)
    assert await titles(size=2, page=3) == ([], None)
    first, after = await titles(size=2)
    assert first == ["AI testing lab", "Cybersecurity range"] and after
    assert await titles(size=2, after=after) == (["Baltic AI hub", "Smart textiles"], None)
    first, after = await titles(size=1, q="ai", ecosystem="digital")
    assert first == ["AI testing lab"] and await titles(size=1, q="ai", after=after) == (["Baltic AI hub"], None)
    bad = await p.get("/offers", params={"size": 500})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("size")
    # a host cannot publish for an organisation it does not act for
    stranger = await p.post("/offers", {"host_id": berlin["organisation_id"], "title": "x", "ecosystem": "digital",
                                        "window_start": start.isoformat(), "window_end": start.isoformat(),
                                        "capacity": 1, "language": "en"}, p.token("host", subject="eve"))
    assert stranger.status_code == 403


async def test_enrolment_updates_are_versioned_and_published(programme, infra, later):
    p = programme
    vt = p.token("visitor", subject="vera")
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        org = await p.enrol(vt, "FR", "Lyon", ["visitor"])
        path = f"/organisations/{org['organisation_id']}"
        updated = await p.ok("PATCH", path, {"revision": 1, "city": "Villeurbanne", "roles": ["visitor", "host"]}, vt)
        assert (updated["revision"], updated["city"], updated["roles"]) == (2, "Villeurbanne", ["visitor", "host"])
        stale = await p.client.patch(path, json={"revision": 1, "city": "Paris"}, headers=vt)
        assert stale.status_code == 409 and "revision 2" in stale.json()["detail"]
        invalid = await p.client.patch(path, json={"revision": 2, "organisation_type": "sme"}, headers=vt)
        assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "cluster_name"
        foreign = await p.client.patch(path, json={"revision": 2, "city": "Nice"}, headers=p.token("visitor"))
        assert foreign.status_code == 403
        published = await watcher.wait_for(lambda: watcher.of_type(OrganisationUpdatedV2, org["organisation_id"]), 30,
                                           "OrganisationUpdated")
    event = published[0].event()
    assert (event.revision, event.city, event.owner) == (2, "Villeurbanne", "vera")
    assert len(watcher.of_type(OrganisationUpdatedV2)) == 1
    assert (await p.ok("GET", path, headers=vt))["city"] == "Villeurbanne"


async def test_an_exchange_runs_to_closed_through_every_later_state(programme, infra, later):
    p = programme
    vt, ht, _, call, visitor, host = await setup(p, later)
    application = await p.ok("POST", "/applications", p.application_body(call, visitor, host, later(30)), vt,
                             status=201)
    path = f"/applications/{application['application_id']}"
    await assessed(p, infra, application, ApplicationApproved)
    await assessed(p, infra, application, HostAccepted, host_id=host["organisation_id"])
    too_early = await p.post(f"{path}/start", None, ht)
    assert too_early.status_code == 409 and "host_confirmed cannot become in_progress" in too_early.json()["detail"]
    await assessed(p, infra, application, GrantCommitted, travel_cents=27_500, subsistence_cents=50_000,
                   total_cents=77_500, rule_set_version="default-v1", available_after_cents=0)
    await assessed(p, infra, application, GrantAgreementAccepted, accepted_by="vera", document_sha256="ab" * 32)
    assert (await p.ok("GET", path, headers=vt))["status"] == "agreement_signed"
    assert (await p.post(f"{path}/start", None, vt)).status_code == 403  # the host confirms the arrival
    assert (await p.ok("POST", f"{path}/start", headers=ht))["status"] == "in_progress"
    early_report = await p.post(f"{path}/report", {"summary": "great"}, vt)
    assert early_report.status_code == 409
    assert (await p.ok("POST", f"{path}/complete", headers=ht))["status"] == "completed"
    reported = await p.ok("POST", f"{path}/report", {"summary": "Two joint projects started",
                                                     "outcomes": ["MoU signed"]}, vt)
    assert reported["status"] == "reported"
    closed = await p.ok("POST", f"{path}/close", {"reason": "report accepted"})
    assert closed["status"] == "closed"
    assert [e["status"] for e in closed["timeline"]] == [
        "submitted", "approved", "host_confirmed", "grant_committed", "agreement_signed", "in_progress",
        "completed", "reported", "closed"]
    assert "Two joint projects started" in closed["timeline"][-2]["summary"]


async def test_a_text_search_is_answered_from_an_index_and_pages_are_bounded(run_service, infra, namespace, token,
                                                                             later, tmp_path):
    """Issue 23, finding 6: `GET /offers?q=` ran an unindexed case-insensitive regex and a count on
    every call, and `page` let the database skip 999,900 offers. Now every filter a search sends is
    served by an index (the offers' search terms), a page is 10 deep at most (then the cursor), and
    the index follows the offer's changes."""
    audit = tmp_path / "queries.jsonl"
    async for p in running_programme(run_service, infra, namespace, token, QUERY_AUDIT_FILE=str(audit)):
        ht = p.token("host", subject="hans")
        host = await p.enrol(ht, "DE", "Berlin", ["host"])
        start = later(14)
        body = {"host_id": host["organisation_id"], "title": "Photonics Lab", "ecosystem": "digital",
                "description": "Lasers and optics", "window_start": start.isoformat(),
                "window_end": (start + timedelta(days=20)).isoformat(), "capacity": 1, "language": "en"}
        offer = await p.ok("POST", "/offers", body, ht, status=201)
        audit.write_text("")  # what the searches send, from here

        async def found(q: str) -> list[str]:
            page = await p.ok("GET", "/offers", params={"q": q, "ecosystem": "digital"}, headers=p.token("visitor"))
            return [o["offer_id"] for o in page["items"]]
        assert await found("photonics") == [offer["offer_id"]] and await found("optics lasers") == [offer["offer_id"]]
        assert await found("PHOTONIC") == []  # whole words
        searched = [line for line in audit.read_text().splitlines()
                    if json.loads(line)["collection"] in ("offers", "offer_terms")]
        assert searched and not await scans(infra.mongodb_url, searched), "a search scans no collection"
        assert (await p.get("/offers", params={"page": 11})).status_code == 422

        path = f"/offers/{offer['offer_id']}"
        await p.ok("PATCH", path, {"revision": 1, "title": "Quantum Lab", "description": ""}, ht)
        assert await found("photonics") == [] and await found("quantum") == [offer["offer_id"]]
        await p.ok("POST", f"{path}/withdrawal", {"reason": "full"}, ht)
        assert await found("quantum") == []
        assert await p.db.offer_terms.count_documents({"offer_id": offer["offer_id"]}) == 0

"""The foundation flow over HTTP and the real Kafka and database: enrol, call, apply, then
the other services' events (injected as they would publish them) fold into status and
timeline; and a rebuild from the topics arrives at the same read model."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

from pymongo import AsyncMongoClient

from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ApplicationSubmittedV2, ApplicationWithdrawn, CallPublished,
                                           OfferPublished, OrganisationEnrolledV2, OrganisationUpdatedV2,
                                           MembershipLeft, PartnershipFormed)
from cx_shared.events.assessment import ApplicationApproved, EligibilityChecked, HostAccepted
from cx_shared.events.common import RuleOutcome
from cx_shared.events.grants import GrantCommitted
from cx_shared.events.notifications import EmailSent
from cx_shared.store import public
from cx_shared.testing.kafka import TopicWatcher, publish_envelope, topic_names
from cx_shared.topics import APPLICATIONS

from applications.storage import Storage


def downstream(application: dict, submitted: Envelope) -> list[Envelope]:
    """What assessment, grants and notifications publish about an application, in order."""
    app_id, call_id = application["application_id"], application["call_id"]
    host_id = application["host_id"]

    def caused(event, source, cause):
        return Envelope.wrap(event, source=f"/clusterxchange/{source}", subject=app_id,
                             correlation_id=submitted.correlationid, causation_id=cause.id)

    checked = caused(EligibilityChecked(application_id=app_id, call_id=call_id, eligible=True,
                                        rule_set_version="default-v1",
                                        outcomes=[RuleOutcome(rule="transnational", passed=True,
                                                              reason="FR visits DE")]), "assessment", submitted)
    approved = caused(ApplicationApproved(application_id=app_id, call_id=call_id, reasons=["eligible"]),
                      "assessment", checked)
    email = caused(EmailSent(notification_id="n-1", application_id=app_id, cause_event_id=approved.id,
                             cause_event_type=approved.type, recipient_role="visitor", language="en",
                             template="application_approved"), "notifications", approved)
    accepted = caused(HostAccepted(application_id=app_id, call_id=call_id, host_id=host_id), "assessment", approved)
    committed = caused(GrantCommitted(application_id=app_id, call_id=call_id, travel_cents=27_500,
                                      subsistence_cents=60_000, total_cents=87_500, rule_set_version="default-v1",
                                      available_after_cents=4_912_500), "grants", accepted)
    return [checked, approved, email, accepted, committed]


async def test_foundation_flow_folds_every_event_and_rebuilds_to_the_same_state(programme, infra, later):
    p = programme
    visitor_token = p.token("visitor", subject="vera")
    host_token = p.token("host", subject="hans")
    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watcher:
        partnership, call = await p.partnership_and_call()
        visitor = await p.enrol(visitor_token, "FR", "Lyon", ["visitor"])
        host = await p.enrol(host_token, "DE", "Berlin", ["host"])
        start = later(28)
        offer = await p.ok("POST", "/offers", {
            "host_id": host["organisation_id"], "title": "Hydrogen valley study visit", "ecosystem": "renewable_energy",
            "window_start": start.isoformat(), "window_end": (start + timedelta(days=40)).isoformat(),
            "capacity": 2, "language": "en",
            "description": "Electrolysers"}, host_token, status=201)
        found = await p.ok("GET", "/offers", headers=visitor_token,
                           params={"ecosystem": "renewable_energy", "country": "DE", "q": "hydrogen"})
        assert [o["offer_id"] for o in found["items"]] == [offer["offer_id"]] and found["next"] is None

        application = await p.ok("POST", "/applications", p.application_body(
            call, visitor, host, start, offer_id=offer["offer_id"]), visitor_token, status=201)
        assert application["status"] == "submitted"
        assert application["partnership_id"] == partnership["partnership_id"]
        app_id = application["application_id"]

        # the earlier facts have other keys (other partitions): they may be collected later
        earlier = (PartnershipFormed, CallPublished, OrganisationEnrolledV2, OfferPublished)
        await watcher.wait_for(lambda: all(watcher.of_type(contract) for contract in earlier), 30, "the earlier facts")
        submitted = await watcher.wait_for(lambda: watcher.of_type(ApplicationSubmittedV2, app_id), 30,
                                           "ApplicationSubmitted")
        event = submitted[0].event()
        assert event.visitor.country == "FR" and event.host.city == "Berlin"
        assert "contact" not in submitted[0].data["visitor"]  # minimised: the contact travels sealed, enrolled
        enrolled = watcher.of_type(OrganisationEnrolledV2, event.visitor.organisation_id)[0].event()
        assert "contact@lyon.example" not in enrolled.contact_sealed
        assert 3 <= event.working_days <= 5 and event.offer_id == offer["offer_id"]
        published = watcher.of_type(CallPublished)[0].event()
        assert published.budget_cents == 5_000_000 and "DE" in published.eligible_countries

        lifecycle = downstream(application, submitted[0])
        for envelope in lifecycle + lifecycle[:2]:  # and two redeliveries
            await publish_envelope(infra.kafka, envelope, p.namespace)

        async def folded():  # as its partnership's staff read it: the mail log is theirs
            return await p.ok("GET", f"/applications/{app_id}", headers=p.pm)
        final = await p.eventually(folded, lambda a: a["status"] == "grant_committed" and len(a["timeline"]) == 6)
        assert [e["event_type"] for e in final["timeline"]] == [
            ApplicationSubmittedV2.ce_type(), EligibilityChecked.ce_type(), ApplicationApproved.ce_type(),
            EmailSent.ce_type(), HostAccepted.ce_type(), GrantCommitted.ce_type()]
        assert [e["status"] for e in final["timeline"]] == [
            "submitted", "under_assessment", "approved", "approved", "host_confirmed", "grant_committed"]
        assert "EUR 875.00" in final["timeline"][-1]["summary"]
        assert "application_approved" in final["timeline"][3]["summary"]
        assert final["timeline"][-1]["source"] == "/clusterxchange/grants"

        # An enrolment change after the fact, then a withdrawal, so the rebuild has more to replay.
        await p.ok("PATCH", f"/organisations/{visitor['organisation_id']}",
                   {"revision": 1, "city": "Villeurbanne"}, visitor_token)
        await p.ok("POST", f"/applications/{app_id}/withdraw", {"reason": "visa refused"}, visitor_token)
        # Memberships come from their own events only (issue 23): the host joins, the visitor joins and leaves.
        joins = "/organisations/{}/partnerships"
        for org, who in ((host, host_token), (visitor, visitor_token)):
            await p.ok("POST", joins.format(org["organisation_id"]), {"partnership_id": partnership["partnership_id"]},
                       who, status=201)
        await p.ok("DELETE", f"{joins.format(visitor['organisation_id'])}/{partnership['partnership_id']}",
                   headers=visitor_token)
        await watcher.wait_for(lambda: watcher.of_type(ApplicationWithdrawn, app_id)
                               and watcher.of_type(OrganisationUpdatedV2) and watcher.of_type(MembershipLeft),
                               30, "the withdrawal, the update and the memberships")
        # The service reads its own topic too: its own events must change nothing on the way back.
        await asyncio.sleep(1.5)
        live = await read_model(p.db)
        assert live["applications"][0]["status"] == "withdrawn"
        assert len(live["applications"][0]["timeline"]) == 7
        members = {o["organisation_id"]: o.get("memberships") for o in live["organisations"]}
        assert members[host["organisation_id"]].keys() == {partnership["partnership_id"]}
        assert members[visitor["organisation_id"]] == {}

    rebuilt_name = f"{p.db.name}_rebuilt"
    env = {**os.environ, **dict(run_env(p)), **infra.kafka_env("applications"), "MONGODB_DATABASE": rebuilt_name}
    done = subprocess.run([sys.executable, "-m", "applications.rebuild"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    try:
        assert await read_model(client[rebuilt_name]) == live
        again = subprocess.run([sys.executable, "-m", "applications.rebuild"], env=env, capture_output=True,
                               timeout=120)
        assert again.returncode != 0 and b"not empty" in again.stderr
    finally:
        await client.drop_database(rebuilt_name)
        await client.close()


def run_env(p) -> dict[str, str]:
    return {"TOPIC_NAMESPACE": p.namespace, "SERVICE_NAME": "applications", "LOG_JSON": "true"}


async def read_model(db) -> dict[str, list[dict]]:
    """Every document, the exchanges with their whole timeline (milestones and noted entries)."""
    storage = Storage(db)
    model = {name: [public(d) async for d in db[name].find({}).sort([("_id", 1)])]
             for name in ("organisations", "partnerships", "calls", "offers")}
    model["applications"] = [public(await storage.with_timeline(d))
                             async for d in db["applications"].find({}).sort([("_id", 1)])]
    return model

"""Every service's rebuild (`python -m <service>.rebuild`): with the four services live, a few
exchanges are driven to rest; each service's topics are then replayed into an empty database
by the real command, and the result is compared with the live database, collection by
collection, document by document. Notifications' rebuild sends no email and posts no webhook."""

from __future__ import annotations

import os
from datetime import date, timedelta
import subprocess
import sys

import httpx
import pytest
from pymongo import AsyncMongoClient

from cx_shared import tally
from cx_shared.store import PROCESSED
from cx_shared.testing.kafka import topic_names, wait_consumed
from cx_shared.testing.waiting import eventually
from cx_shared.testing.webhooks import LOCAL_RECEIVERS, Receiver
from cx_shared.topics import APPLICATIONS, ASSESSMENT, FINANCE, GRANTS, NOTIFICATIONS, consumer_group
from tests.journey import Journey, pending_action, verified, wait_mail_settled

pytestmark = pytest.mark.infra
SERVICES = ("applications", "assessment", "grants", "notifications")

# Fields that say when or by whom this process did its work, not what the events say: a
# rebuild, later, cannot and need not reproduce them.
IGNORED = {
    # leases: the holder's token and lapse time are the process's own (the relay's, the mailer's);
    # a released lease and one never taken are the same at rest
    "relay_lease_token", "relay_lease_until", "claim", "lease_until",
    # when this process took the event in: notifications' items queued, due, scheduled, parked;
    # assessment's submissions received, grants' agreements stored
    "created_at", "next_attempt_at", "scheduled_at", "parked_at", "received_at", "stored_at",
}
# Not rebuilt, by design: named locks (cx_shared.locks) are leases of requests in flight, all
# lapsed at rest. Notifications (see notifications.rebuild): a webhook delivery has no event saying
# it was made, so a replay makes none; the configuration is copied, not replayed.
LOCKS = {"locks"}
NOT_REPLAYED = {"grants": {"actions"},  # four eyes: a rebuild replays the verified changes, not the actions' steps
                "notifications": {"webhook_deliveries", "subscriptions", "subscription_scopes", "staff", "opt_outs",
                                  "unsubscribe_tokens", "confirmed_addresses", "confirmation_tokens"}}


@pytest.fixture
def system(run_service):
    return {name: run_service(name, **(LOCAL_RECEIVERS if name == "notifications" else {})) for name in SERVICES}


def ok(method: str, url: str, headers: dict, body: dict | None = None) -> dict:
    response = httpx.request(method, url, json=body, headers=headers, timeout=20)
    assert response.status_code in (200, 201), f"{method} {url}: {response.status_code} {response.text}"
    return response.json()


async def drive(journey: Journey, system: dict, accept: bool) -> str:
    """One exchange: enrolment, a call in automatic mode, the submission, its approval and the
    host's answer over HTTP. Accepted: the grant's commitment, then over HTTP the visitor's
    acceptance of the agreement (pre-financing ordered), an officer's acceptance of a shorter
    report (the commitment reduced, the balance ordered) and a top-up of the call's budget.
    Declined: assessment releases the reservation, grants records the release."""
    journey.open_call()
    journey.enrol_pair()
    # the visitor joins the call's partnership (membership.joined: replayed into its organisation)
    journey.post(f"/organisations/{journey.visitor['organisation_id']}/partnerships",
                 {"partnership_id": journey.call["partnership_id"]}, journey.visitor_headers)
    app_id = journey.submit()["application_id"]
    await journey.wait_status(app_id, "approved")
    answer = {"accept": True} if accept else {"accept": False, "reason": "our lab is closed that week"}
    ok("POST", f"{system['assessment'].url}/applications/{app_id}/host-decision", journey.host_headers, answer)
    if not accept:
        await journey.wait_status(app_id, "cancelled")  # applications: a declined exchange is over
        return app_id
    await journey.wait_status(app_id, "grant_committed")
    grants = system["grants"].url
    ok("POST", f"{grants}/agreements/{app_id}/acceptance", journey.visitor_headers)
    # The report accepted by the partnership's review (4 working days) initiates the balance; a
    # second officer verifies it, and a top-up (four eyes, issue 23).
    api = f"{journey.applications}/applications/{app_id}"
    start = date.fromisoformat(journey.status(app_id)["planned_start"])
    for path, who, body in (("start", journey.host_headers, {}),
                            ("complete", journey.host_headers, {"actual_end": str(start + timedelta(days=3))}),
                            ("report", journey.visitor_headers, {"summary": "Useful", "satisfaction": 4}),
                            ("report/review", journey.manager, {"accept": True})):
        assert httpx.post(f"{api}/{path}", json=body, headers=who, timeout=20).status_code == 200
    call_id = journey.call["call_id"]
    officer = journey.token("grant_officer", subject="second-officer", partnership_ids=(journey.call["partnership_id"],))
    balance = await pending_action(grants, call_id, "balance_payment", journey.manager, app_id)
    verified(grants, balance, journey.manager, officer)
    top_up = httpx.post(f"{grants}/calls/{call_id}/budget/top-ups", headers={
        **journey.manager, "Idempotency-Key": f"rebuild-{app_id}"}, json={"amount_cents": 50_000,
                                                                          "reason": "a sponsor joined"}, timeout=20)
    assert top_up.status_code == 202, top_up.text
    verified(grants, top_up.json(), journey.manager, officer)
    return app_id


async def drive_panel(journey: Journey, system: dict) -> str:
    """One exchange of a panel call, decided by people over HTTP: a manager's new rule-set version
    (its threshold), an assessor's claim and score, the manager's round (approved), his override to
    waitlisted (the money it frees promotes the application again, in the same request), his
    override to rejected and the visitor's appeal."""
    call = journey.open_call(assessment_mode="panel")
    journey.enrol_pair()
    assessment = system["assessment"].url

    async def known():
        url = f"{assessment}/calls/{call['call_id']}"
        return httpx.get(url, headers=journey.manager, timeout=10).status_code == 200
    await eventually(known, what="the call opened in assessment")
    ok("PUT", f"{assessment}/calls/{call['call_id']}/rule-set", journey.manager, {"threshold": 55})
    app_id = journey.submit()["application_id"]
    assessor = journey.token("assessor", subject=f"assessor-{journey.suffix}",
                             partnership_ids=(call["partnership_id"],))

    async def queued():
        return httpx.get(f"{assessment}/applications/{app_id}", headers=assessor, timeout=10).status_code == 200
    await eventually(queued, what="the application in assessment's queue")
    ok("POST", f"{assessment}/applications/{app_id}/claim", assessor)
    scores = {"relevance_to_purposes": 8, "expected_impact": 7, "quality_of_plan": 6, "interregional_value": 9}
    ok("POST", f"{assessment}/applications/{app_id}/scores", assessor, {"scores": scores, "comment": "solid plan"})
    ok("POST", f"{assessment}/calls/{call['call_id']}/rounds", journey.manager)
    await journey.wait_status(app_id, "approved")
    promoted = ok("POST", f"{assessment}/applications/{app_id}/override", journey.manager,
                  {"decision": "waitlisted", "justification": "the host's capacity is uncertain this season"})
    assert promoted["status"] == "approved" and promoted["reasons"][0].startswith("promoted"), promoted
    rejected = ok("POST", f"{assessment}/applications/{app_id}/override", journey.manager,
                  {"decision": "rejected", "justification": "the host withdrew the pilot line"})
    assert rejected["status"] == "rejected", rejected
    ok("POST", f"{assessment}/applications/{app_id}/appeal", journey.visitor_headers,
       {"reason": "the pilot line is back in service"})
    return app_id


async def assert_made_over_http(live_db: dict, committed: str, declined: str, panel: str) -> None:
    """The live state holds what the HTTP requests made, so a rebuild missing any of it differs."""
    entries = live_db["assessment"].entries
    assert (await entries.find_one({"_id": committed}))["status"] == "host_accepted"
    assert (await entries.find_one({"_id": declined}))["status"] == "host_declined"
    decided = await entries.find_one({"_id": panel})
    assert decided["status"] == "appealed" and decided["appealed"] and decided["score"] is not None
    assert len(decided["assessments"]) == 1 and decided["rule_set_version"].endswith("@2")
    assert "overridden" in decided["reasons"][0]
    grant = await live_db["grants"].commitments.find_one({"_id": committed})
    record = grant["record"]
    assert record["agreement"]["status"] == "accepted" and record["report"]["actual_working_days"] == 4
    assert {p["kind"] for p in record["payments"].values()} == {"prefinancing", "balance"}
    assert record["released_cents"] > 0  # four days instead of five: the commitment was reduced
    assert await live_db["grants"].top_ups.count_documents({}) == 1


def subscribe(system: dict, journey: Journey, url: str) -> None:
    """A programme-wide subscriber of every event: the live service posts it deliveries."""
    response = httpx.post(f"{system['notifications'].url}/webhooks/subscriptions", headers=journey.manager,
                          json={"url": url, "event_types": ["*"], "programme_wide": True,
                                "owner_email": "crm@example.org"}, timeout=20)
    assert response.status_code == 201, response.text


async def rebuilt_differences(client, service: str, service_env) -> list[tuple]:
    """The service's database rebuilt by the real command beside the live one, and what differs."""
    live_name = service_env(service)["MONGODB_DATABASE"]
    args = ["--configuration-from", live_name] if service == "notifications" else []
    done = subprocess.run([sys.executable, "-m", f"{service}.rebuild", *args], capture_output=True, timeout=300,
                          env={**os.environ, **service_env(service, MONGODB_DATABASE=f"{live_name}_rebuilt")})
    assert done.returncode == 0, done.stderr.decode()
    skip = LOCKS | NOT_REPLAYED.get(service, set())
    live, rebuilt = await snapshot(client[live_name], skip), await snapshot(client[f"{live_name}_rebuilt"], skip)
    assert rebuilt.keys() == live.keys(), service
    return differences(live, rebuilt)


async def snapshot(db, skip: set[str] = frozenset()) -> dict[str, list[dict]]:
    """Every collection but `skip`, its documents by _id without the IGNORED fields."""
    names = sorted(set(await db.list_collection_names()) - skip)
    return {name: [comparable(d) async for d in db[name].find({}).sort("_id")] for name in names}


def comparable(doc: dict) -> dict:
    """`processed` is a set of event ids, and assessment's ring of causes (`causes`, slot = change
    count modulo the ring) the set of the last changes' causes: live, their order is that in which
    records of different partitions happened to arrive; a rebuild applies them in time order. The
    change count (`seq`) and which causes are remembered are compared as they are."""
    doc = {k: v for k, v in doc.items() if k not in IGNORED}
    if isinstance(doc.get(PROCESSED), list):
        doc[PROCESSED] = sorted(doc[PROCESSED])
    if isinstance(doc.get(tally.CAUSES), dict):
        doc[tally.CAUSES] = sorted(doc[tally.CAUSES].values())
    return doc


def differences(live: dict, rebuilt: dict) -> list[tuple]:
    """(collection, _id, field, live value, rebuilt value) of every field that differs; a whole
    document missing on one side is its field None."""
    found = []
    for collection, documents in live.items():
        mine, theirs = {d["_id"]: d for d in documents}, {d["_id"]: d for d in rebuilt[collection]}
        for doc_id in sorted(mine.keys() | theirs.keys(), key=str):
            a, b = mine.get(doc_id), theirs.get(doc_id)
            if a is None or b is None:
                found.append((collection, doc_id, None, a is not None, b is not None))
                continue
            found += [(collection, doc_id, k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
                      if a.get(k) != b.get(k)]
    return found


def sink_count(infra) -> int:
    return httpx.get(f"{infra.smtp_sink_url}/messages/count", timeout=10).json()["count"]


async def test_every_rebuild_arrives_at_the_live_state_with_what_http_requests_made_and_sends_nothing(
        system, infra, namespace, token, service_env):
    first, second = Journey(system["applications"].url, token), Journey(system["applications"].url, token)
    with Receiver({"/hook": [200]}) as receiver:
        subscribe(system, first, f"{receiver.url}/hook")
        committed = await drive(first, system, accept=True)
        declined = await drive(second, system, accept=False)
        third = Journey(system["applications"].url, token)
        panel = await drive_panel(third, system)
        topics = topic_names(namespace, APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, FINANCE)
        groups = [consumer_group(name, namespace) for name in SERVICES]
        # At rest: every event handled, every email sent and its EmailSent handled, every delivery made.
        await wait_consumed(infra.kafka, groups, topics)
        for journey, app_id in ((first, committed), (second, declined), (third, panel)):
            await wait_mail_settled(system["notifications"].url, app_id, journey.manager)
        await wait_consumed(infra.kafka, groups, topics)
        client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
        live_db = {name: client[service_env(name)["MONGODB_DATABASE"]] for name in SERVICES}
        await wait_deliveries_made(live_db["notifications"])
        await assert_made_over_http(live_db, committed, declined, panel)
        assert receiver.requests, "the live service posted the subscriber nothing: the check below would be empty"
        mails, posts = sink_count(infra), len(receiver.requests)

        try:
            found = {name: await rebuilt_differences(client, name, service_env) for name in SERVICES}
            for name in SERVICES:
                assert not found[name], f"{name}: " + "\n".join(map(repr, found[name]))
            # The rebuild ran no mailer and no dispatcher: nothing more reached anyone.
            assert (sink_count(infra), len(receiver.requests)) == (mails, posts)
            notifications = await snapshot(client[f"{live_db['notifications'].name}_rebuilt"])
            assert notifications["notifications"] and all(n["status"] == "sent" for n in notifications["notifications"])
        finally:
            for name in SERVICES:
                await client.drop_database(f"{live_db[name].name}_rebuilt")
            await client.close()


async def wait_deliveries_made(db, timeout: float = 60) -> None:
    async def made():
        return await db.webhook_deliveries.count_documents({}) > 0 and \
            await db.webhook_deliveries.count_documents({"status": {"$in": ["pending", "sending"]}}) == 0
    await eventually(made, timeout, "every webhook delivery made")

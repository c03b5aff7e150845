"""Personal data across the four running services (issue 15), over the real broker, database,
SMTP sink and HTTP: a visitor's contact person, named in the visitor's report, is exported, then
erased while grants is stopped;
every service forgets them and reports, grants when it is back; no collection keeps their name,
e-mail or phone, no record of any topic shows them to a reader holding every key left on the
keys topic, the report's texts read "[erased]" (its structured answers stay), the host's feedback
is the host's and stays, the ledger still reconciles, and no service's rebuild brings them back.
The export held every document the erasure changed."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from pymongo import AsyncMongoClient

from cx_shared.envelope import Envelope
from cx_shared.events.applications import OrganisationEnrolled, OrganisationEnrolledV2, ReportSubmittedV2
from cx_shared.personal_data import ERASED, ERASED_EMAIL
from cx_shared.personal_data.keys import Unreadable, unseal
from cx_shared.testing.kafka import TopicWatcher, end_offsets, publish_raw, topic_names, wait_consumed
from cx_shared.testing.waiting import eventually
from cx_shared.testing.webhooks import LOCAL_RECEIVERS, Receiver
from cx_shared.topics import (APPLICATIONS, ASSESSMENT, DEAD_LETTERS, FINANCE, GRANTS, KEYS, NOTIFICATIONS,
                              PRODUCT_TOPICS, consumer_group, qualified, service_source)
from tests.journey import Journey, confirm_address, wait_mail_settled

pytestmark = pytest.mark.infra
SERVICES = ("applications", "assessment", "grants", "notifications")


def the_person(journey: Journey) -> dict:
    """The visitor's contact person: a name with a letter JSON escapes, an e-mail, a phone."""
    return {"name": f"Ana García {journey.suffix}", "email": f"ana.{journey.suffix}@madrid-photonics.example.es",
            "phone": f"+34 600 {journey.suffix}", "language": "en"}


def enrol_visitor(journey: Journey, person: dict) -> None:
    journey.visitor_email = person["email"]
    journey.visitor = journey.post("/organisations", {
        "legal_name": f"Madrid Photonics {journey.suffix}", "country": "ES", "city": "Madrid",
        "organisation_type": "cluster_organisation", "ecosystems": ["electronics"], "roles": ["visitor"],
        "contact": person}, journey.token("visitor", subject=journey.visitor_sub))
    journey.host = journey.enrol("host", journey.host_sub, "DE", "Munich", f"host-{journey.suffix}@example.de", "de")
    for address in (person["email"], f"host-{journey.suffix}@example.de"):
        confirm_address(address)  # notifications mails a contact only once it confirmed its address


def traces(text: str, person: dict | list[str]) -> list[str]:
    """Which of the person's name, e-mail and phone (or of the strings given) the text holds (as
    written, or JSON-escaped)."""
    needles = [person[k] for k in ("name", "email", "phone")] if isinstance(person, dict) else person
    forms = {n: {n.lower(), json.dumps(n)[1:-1].lower()} for n in needles}
    return [n for n in needles if any(f in text.lower() for f in forms[n])]


async def records_of(kafka, topics: list[str]) -> list:
    """Every record on the topics, up to their ends now, as a reader with the admin's rights has them."""
    ends = {tp: end for topic in topics for tp, end in (await end_offsets(kafka, topic)).items()}
    async with TopicWatcher(kafka, topics) as watcher:
        await watcher.wait_for(lambda: not watcher.lagging(ends), 30, "every record of the topics")
    return watcher.records


async def readable(kafka, namespace: str, person: dict | list[str]) -> list[tuple[str, int, list[str]]]:
    """Every record of every topic (dead letters too) that shows a trace of the person to a reader
    holding every key still on the keys topic (its latest value per subject)."""
    keys: dict[str, bytes | None] = {}
    for record in await records_of(kafka, topic_names(namespace, KEYS)):
        keys[record.key.decode()] = base64.b64decode(json.loads(record.value)["key"]) if record.value else None
    found = []
    for record in await records_of(kafka, topic_names(namespace, *PRODUCT_TOPICS, DEAD_LETTERS)):
        text = (record.value or b"").decode()
        opened = [json.dumps(unseal(key, subject, sealed)) for sealed in re.findall(r"aes256gcm:[A-Za-z0-9+/=]+", text)
                  for subject, key in keys.items() if key and can_open(key, subject, sealed)]
        if hits := traces(" ".join([text, *opened]), person):
            found.append((record.topic, record.offset, hits))
    return found


def can_open(key: bytes, subject: str, sealed: str) -> bool:
    try:
        unseal(key, subject, sealed)
        return True
    except Unreadable:
        return False


async def held(db, person: dict | list[str]) -> list[tuple[str, object, list[str]]]:
    """Every document of every collection that still holds a trace of the person."""
    found = []
    for name in sorted(await db.list_collection_names()):
        async for doc in db[name].find({}):
            if hits := traces(json.dumps(doc, default=str, ensure_ascii=False), person):
                found.append((name, doc["_id"], hits))
    return found


STAFF_ONLY = {"assessment.claimed", "conflict.declared", "application.scored", "grant.refused", "email.sent",
              "email.failed"}


async def the_subjects(db, collection: str, doc_id, person: dict) -> bool:
    """Whether a document the erasure changes is the subject's own to read: not a timeline entry
    for staff only, not a mail to someone else (which names the subject, but is not theirs)."""
    doc = await db[collection].find_one({"_id": doc_id})
    if collection == "timeline":
        return doc["event"] not in STAFF_ONLY
    if collection == "notifications":
        return doc["recipient"]["email"].lower() == person["email"].lower()
    return True


async def shows_only_what_the_subject_may_see(exported: dict, dbs: dict, app_id: str, person: dict) -> None:
    """Issue 23, finding 2: the visitor's export holds no staff-only timeline entry, not the host's
    feedback, only the mails sent to the visitor's own address and no other person's address; and it
    says why, how long and to whom (the record of processing)."""
    held_raw = {d["event"] async for d in dbs["applications"]["timeline"].find({"application_id": app_id})}
    assert held_raw & STAFF_ONLY, "the exchange has staff-only entries to leave out"
    shown = {d["document"]["event"] for d in exported["services"]["applications"] if d["collection"] == "timeline"}
    assert shown and not shown & STAFF_ONLY, shown & STAFF_ONLY
    text = json.dumps(exported, ensure_ascii=False)
    assert "A punctual, curious visitor" not in text, "the host's feedback is the host's"
    mails = [d["document"] for d in exported["services"]["notifications"] if d["collection"] == "notifications"]
    assert mails and {m["recipient"]["email"].lower() for m in mails} == {person["email"].lower()}
    assert await dbs["notifications"]["notifications"].count_documents({"application_id": app_id}) > len(mails), \
        "the exchange's mail log holds mails to others, left out"
    addresses = set(re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", json.dumps(exported["services"])))
    assert addresses - {ERASED_EMAIL} == {person["email"]}, addresses  # the placeholder is nobody
    assert {"purpose", "retention", "recipients"} <= set(exported["processing"][0])


def erasure(system: dict, headers: dict, erasure_id: str) -> dict:
    response = httpx.get(f"{system['applications'].url}/personal-data/erasures/{erasure_id}", headers=headers,
                         timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


async def export_of(system: dict, headers: dict, subject_id: str) -> dict:
    """An export asked for and read when every service has answered (202 until then)."""
    url = f"{system['applications'].url}/personal-data/exports"
    asked = httpx.post(url, headers=headers, json={"subject_id": subject_id}, timeout=20)
    assert asked.status_code == 202, asked.text

    def read():
        response = httpx.get(f"{url}/{asked.json()['export_id']}", headers=headers, timeout=10)
        assert response.status_code in (200, 202), response.text
        return response.status_code == 200 and response.json()
    return await eventually(read, 60, "every service's part of the export")


def rebuild(service: str, service_env, live: str) -> str:
    """The real rebuild command into a database of its own; its name."""
    args = ["--configuration-from", live] if service == "notifications" else []
    rebuilt = f"{live}_rebuilt"
    done = subprocess.run([sys.executable, "-m", f"{service}.rebuild", *args], capture_output=True, timeout=300,
                          env={**os.environ, **service_env(service, MONGODB_DATABASE=rebuilt)})
    assert done.returncode == 0, done.stderr.decode()
    return rebuilt


def report_of(journey: Journey, person: dict) -> dict:
    """The visitor's report: its texts name the contact person, and a sentence only it holds."""
    return {"summary": f"{person['name']} led the visit. Lab notebook {journey.suffix}",
            "learnt": f"Write to {person['email']} for the protocols",
            "free_text": f"Call {person['phone']} about the follow-up", "satisfaction": 5,
            "outcomes": ["new_collaboration", f"An MoU drafted by {person['name']}"]}


async def drive(system: dict, journey: Journey, person: dict) -> str:
    """One exchange to its report and the host's feedback, with a programme-wide subscriber hearing
    everything."""
    journey.open_call()
    app_id = journey.submit()["application_id"]
    await journey.wait_status(app_id, "approved")
    decision = httpx.post(f"{system['assessment'].url}/applications/{app_id}/host-decision", json={"accept": True},
                          headers=journey.host_headers, timeout=20)
    assert decision.status_code in (200, 201, 202), decision.text
    await journey.wait_status(app_id, "grant_committed")
    accepted = httpx.post(f"{system['grants'].url}/agreements/{app_id}/acceptance", headers=journey.visitor_headers,
                          timeout=20)
    assert accepted.status_code in (200, 201, 202), accepted.text
    await journey.wait_status(app_id, "agreement_signed")
    api = f"{journey.applications}/applications/{app_id}"
    start = journey.status(app_id)["planned_start"]
    for path, body, headers in (("start", {"actual_start": start}, journey.host_headers),
                                ("complete", {"actual_end": start}, journey.host_headers),
                                ("report", report_of(journey, person), journey.visitor_headers),
                                ("host-feedback", {"satisfaction": 4, "free_text": "A punctual, curious visitor"},
                                 journey.host_headers)):
        response = httpx.post(f"{api}/{path}", json=body, headers=headers, timeout=20)
        assert response.status_code in (200, 201), (path, response.text)
    await wait_mail_settled(system["notifications"].url, app_id, journey.manager)
    return app_id


async def test_an_erased_contact_person_is_nowhere_and_stays_so(run_service, infra, namespace, token, service_env):
    system = {name: run_service(name, **(LOCAL_RECEIVERS if name == "notifications" else {})) for name in SERVICES}
    journey = Journey(system["applications"].url, token)
    person = the_person(journey)
    topics = topic_names(namespace, APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, FINANCE)
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    dbs = {name: client[service_env(name)["MONGODB_DATABASE"]] for name in SERVICES}
    with Receiver({"/hook": [200]}) as receiver:
        response = httpx.post(f"{system['notifications'].url}/webhooks/subscriptions", headers=journey.manager,
                              json={"url": f"{receiver.url}/hook", "event_types": ["*"], "programme_wide": True,
                                    "owner_email": "crm@example.org"}, timeout=20)
        assert response.status_code == 201, response.text
        enrol_visitor(journey, person)
        app_id = await drive(system, journey, person)
        wrote = [f"Lab notebook {journey.suffix}"]  # the report's own words, beside the person's
        await wait_consumed(infra.kafka, [consumer_group(s, namespace) for s in SERVICES], topics)
        # Before: the person is in every service that needs them (and in none that does not).
        before = {name: await held(dbs[name], person) for name in SERVICES}
        assert before["applications"] and before["notifications"], before
        assert not before["assessment"] and not before["grants"], before
        assert any(traces(body.decode(), person) for _, _, body in receiver.requests)
        assert any(traces(body.decode(), wrote) for _, _, body in receiver.requests), "programme-wide: in clear"
        on_topics = await readable(infra.kafka, namespace, person)
        assert on_topics and {topic for topic, *_ in on_topics} == set(topic_names(namespace, APPLICATIONS)), \
            "before: only the sealed enrolment and report carry the person, and their key opens them"
        async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watcher:
            report = (await watcher.wait_for(lambda: watcher.of_type(ReportSubmittedV2, app_id), 30, "the report"))[0]
        assert not traces(report.kafka_value().decode(), [*wrote, person["name"], person["email"]]), \
            "the report travels sealed"
        assert await readable(infra.kafka, namespace, wrote)

        # The export, taken before the erasure, holds every document the erasure then changes.
        exported = await export_of(system, journey.visitor_headers, journey.visitor["organisation_id"])
        assert traces(json.dumps(exported, ensure_ascii=False), person) == [person[k] for k in ("name", "email",
                                                                                               "phone")]
        for name in SERVICES:
            parts = {(d["collection"], str(d["document"]["_id"])) for d in exported["services"][name]}
            own = [(c, str(i)) for c, i, _ in before[name] if await the_subjects(dbs[name], c, i, person)]
            assert set(own) <= parts, name
        await shows_only_what_the_subject_may_see(exported, dbs, app_id, person)

        # Grants is down while the data subject asks: it erases and reports when it is back.
        system["grants"].stop()
        subject = journey.visitor_headers
        asked = httpx.post(f"{system['applications'].url}/personal-data/erasures", headers=subject,
                           json={"subject_id": journey.visitor["organisation_id"]}, timeout=20)
        assert asked.status_code == 202, asked.text
        erasure_id, visitor_id = asked.json()["erasure_id"], journey.visitor["organisation_id"]

        def reported(*services: str):
            parts = erasure(system, subject, erasure_id)["services"]
            return all(parts[s]["status"] == "complete" for s in services) and parts
        parts = await eventually(lambda: reported("applications", "assessment", "notifications"), 60,
                                 "the running services' reports")
        assert parts["grants"] == {"status": "pending"}
        system["grants"] = run_service("grants")
        await eventually(lambda: reported(*SERVICES), 60, "grants' report after its restart")
        done = erasure(system, subject, erasure_id)
        assert done["status"] == "complete" and all(p["erased_at"] for p in done["services"].values())
        assert done["services"]["grants"]["kept"], "grants says what it keeps and why"
        await wait_consumed(infra.kafka, [consumer_group(s, namespace) for s in SERVICES], topics)

        for name in SERVICES:
            assert await held(dbs[name], person) == [], name
            assert await held(dbs[name], wrote) == [], name
        exchange = journey.status(app_id, journey.visitor_headers)
        assert not traces(json.dumps(exchange), person) and not traces(json.dumps(exchange), wrote)
        assert {k: exchange["report"][k] for k in ("summary", "learnt", "free_text", "outcomes", "satisfaction")} == {
            "summary": ERASED, "learnt": ERASED, "free_text": ERASED, "outcomes": ["new_collaboration", ERASED],
            "satisfaction": 5}, "the texts are erased, the structured answers stay"
        assert journey.status(app_id, journey.host_headers)["host_feedback"]["free_text"] == \
            "A punctual, curious visitor", "the host's own stays"
        officer = token("grant_officer", subject="officer", partnership_ids=(journey.call["partnership_id"],))
        balance = httpx.get(f"{system['grants'].url}/calls/{journey.call['call_id']}/reconciliation",
                            headers=officer, timeout=10)
        assert balance.status_code == 200 and balance.json()["balanced"], balance.text
        # Nothing on any topic shows the person, or their report, any more: their key is gone from the keys topic.
        assert await readable(infra.kafka, namespace, person) == []
        assert await readable(infra.kafka, namespace, wrote) == []

        # The sealed enrolment delivered again, and an enrolment of old (v1, the contact in clear, as
        # topics kept from before the migration hold), bring nothing back: the key is gone, and every
        # service keeps the subject's tombstone.
        async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS)) as watcher:
            sealed = await watcher.wait_for(lambda: watcher.of_type(OrganisationEnrolledV2, visitor_id), 30,
                                            "the sealed enrolment")
        in_clear = OrganisationEnrolled(**{k: v for k, v in sealed[0].data.items() if k != "contact_sealed"},
                                        contact=person)
        for envelope in (sealed[0], Envelope.wrap(in_clear, source=service_source("applications"),
                                                  subject=visitor_id)):
            await publish_raw(infra.kafka, qualified(APPLICATIONS, namespace), envelope.kafka_value(),
                              key=visitor_id.encode(), headers=envelope.kafka_headers())
        await wait_consumed(infra.kafka, [consumer_group(s, namespace) for s in SERVICES], topics)
        for name in SERVICES:
            assert await held(dbs[name], person) == [], name

        # The export can no longer be opened: its parts were sealed under the erased key.
        gone = httpx.get(f"{system['applications'].url}/personal-data/exports/{exported['export_id']}",
                         headers=subject, timeout=10)
        assert gone.status_code == 410, gone.text

        # No service's rebuild from the topics brings the person back.
        for name in SERVICES:
            rebuilt = rebuild(name, service_env, dbs[name].name)
            try:
                assert await held(client[rebuilt], person) == [], name
                assert await held(client[rebuilt], wrote) == [], name
            finally:
                await client.drop_database(rebuilt)
    await client.close()

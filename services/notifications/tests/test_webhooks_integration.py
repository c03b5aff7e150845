"""Signed webhooks received by a real local HTTP server, with retries and disablement."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from cx_shared.testing.webhooks import LOCAL_RECEIVERS, Receiver
from notifications.signature import HEADER, verify_signature

pytestmark = pytest.mark.infra


async def test_signed_delivery_retried_after_500s_and_disabled_after_persistent_failure(
        run_service, upstream, sink, token, helpers):
    service = run_service("notifications", WEBHOOK_BACKOFF_SECONDS="0.2", WEBHOOK_MAX_ATTEMPTS="3",
                          WEBHOOK_DISABLE_AFTER_SECONDS="0", **LOCAL_RECEIVERS)
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    owner = f"crm-owner-{uid}@example.org"
    manager = token("programme_manager", subject=f"crm-{uid}", programme=True)
    with Receiver({"/finance": [500, 500, 200], "/broken": [500]}) as receiver:
        finance = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/finance", "event_types": ["grant.committed"], "programme_wide": True,
            "owner_email": owner}).json()
        broken = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/broken", "event_types": ["eu.clusterxchange.grant.committed.v1"],
            "programme_wide": True,
            "secret": "a-secret-of-the-crm-0123456789", "owner_email": owner, "owner_language": "de"}).json()
        assert len(finance["secret"]) >= 32
        committed = upstream.committed(app_id, call_id, total=250_000)
        await upstream.publish(upstream.approved(app_id, call_id), committed)

        # Retried after two 500s, then delivered: three signed POSTs of the same CloudEvent.
        await helpers.eventually(lambda: len(receiver.to("/finance")) == 3, 30, "three attempts")
        for headers, body in receiver.to("/finance"):
            assert verify_signature(finance["secret"], headers[HEADER], body, tolerance=300)
            assert headers["Content-Type"].startswith("application/cloudevents+json")
        headers, body = receiver.to("/finance")[-1]
        event = json.loads(body)
        assert event["id"] == committed.id and event["type"] == "eu.clusterxchange.grant.committed.v1"
        assert event["specversion"] == "1.0" and event["subject"] == app_id
        assert event["data"]["total_cents"] == 250_000
        # The subscriber's few lines reject a tampered body, a wrong secret and a replayed old signature.
        tampered = body.replace(b"250000", b"990000")
        assert not verify_signature(finance["secret"], headers[HEADER], tampered, tolerance=300)
        assert not verify_signature("not-the-secret-0000", headers[HEADER], body, tolerance=300)
        assert not verify_signature(finance["secret"], headers[HEADER], body, tolerance=300, now=time.time() + 3600)
        # Only grant.committed was asked for: the approval was not delivered.
        assert all(json.loads(b)["type"].endswith("grant.committed.v1") for _, _, b in receiver.requests)

        log = await helpers.eventually(lambda: _delivered(service, manager, finance["subscription_id"]), 10,
                                       "delivery log")
        assert [a["status_code"] for a in log[0]["log"]] == [500, 500, 200]

        # Persistent failure: retries exhausted, the subscription disabled and its owner told (in German).
        await helpers.eventually(lambda: _status(service, manager, broken["subscription_id"]) == "disabled", 30,
                                 "disabled")
        assert len(receiver.to("/broken")) == 3
        notice = (await sink.wait_for(owner, subject="deaktiviert"))[0]
        assert broken["subscription_id"] in notice["subject"] and "/broken" in notice["text"]
        assert _status(service, manager, finance["subscription_id"]) == "active"
        failed = httpx.get(f"{service.url}/webhooks/subscriptions/{broken['subscription_id']}/deliveries",
                           headers=manager).json()
        assert failed[0]["status"] == "failed" and [a["error"] for a in failed[0]["log"]] == ["http 500"] * 3
        assert "secret" not in httpx.get(f"{service.url}/webhooks/subscriptions/{broken['subscription_id']}",
                                         headers=manager).json()

        # Fixed and re-enabled by its owner: the next event is delivered again.
        receiver.script["/broken"] = [200]
        enabled = httpx.post(f"{service.url}/webhooks/subscriptions/{broken['subscription_id']}/enable",
                             headers=manager).json()
        assert enabled["status"] == "active" and enabled["failing_since"] is None
        await upstream.publish(upstream.committed(f"app-2-{uid}", call_id, total=100_000))
        await helpers.eventually(lambda: len(receiver.to("/broken")) == 4, 30, "delivery after re-enabling")
        headers, body = receiver.to("/broken")[-1]
        assert verify_signature("a-secret-of-the-crm-0123456789", headers[HEADER], body)


async def test_subscription_api_checks_who_and_what(run_service, token, helpers):
    service = run_service("notifications")
    subscriptions = f"{service.url}/webhooks/subscriptions"
    body = {"url": "https://crm.example.org/hook", "event_types": ["grant.commited"], "partnership_ids": ["p-1"],
            "owner_email": "o@example.org"}
    gina = token("grant_officer", subject="gina", partnership_ids=("p-1",))
    assert httpx.post(subscriptions, json=body).status_code == 401
    assert httpx.post(subscriptions, json=body, headers=token("visitor")).status_code == 403
    problem = httpx.post(subscriptions, json=body, headers=gina)
    assert problem.status_code == 422 and "grant.commited" in problem.json()["detail"]
    body["event_types"] = ["*"]
    unscoped = httpx.post(subscriptions, headers=gina, json={**body, "partnership_ids": []})
    assert unscoped.status_code == 422 and unscoped.json()["errors"][0]["field"] == "partnership_ids"
    both = httpx.post(subscriptions, headers=token("programme_manager", programme=True), json={**body, "programme_wide": True})
    assert both.status_code == 422 and both.json()["errors"][0]["rule"] == "scope_required"
    mine = httpx.post(subscriptions, headers=gina, json=body)
    assert mine.status_code == 201, mine.text  # a name that does not resolve now is checked at each delivery
    other = token("grant_officer", subject="otto", partnership_ids=("p-1",))
    theirs = f"{subscriptions}/{mine.json()['subscription_id']}"
    assert httpx.get(theirs, headers=other).status_code == 403
    assert httpx.get(subscriptions, headers=other).json() == []


REFUSED_TARGETS = (
    "http://crm.example.org/hook",  # not https
    "https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://172.16.3.4/", "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data", "https://[::1]/", "https://[fe80::1]/", "https://0.0.0.0/",
    "https://[::ffff:127.0.0.1]/", "https://localhost:8443/hook", "https://LOCALHOST/")


async def test_targets_refused_at_creation(run_service, token):
    service = run_service("notifications")
    manager = token("programme_manager", subject="pm", programme=True)
    for url in REFUSED_TARGETS:
        answer = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": url, "event_types": ["*"], "programme_wide": True, "owner_email": "o@example.org"})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["errors"][0]["field"] == "url", url
    assert httpx.get(f"{service.url}/webhooks/subscriptions", headers=manager).json() == []


async def test_a_target_allowed_at_creation_is_checked_again_at_delivery(run_service, upstream, token, helpers):
    """The operator withdraws loopback from the allow-list: the next delivery is refused, nothing is sent."""
    service = run_service("notifications", WEBHOOK_BACKOFF_SECONDS="60", **LOCAL_RECEIVERS)
    manager = token("programme_manager", subject="pm", programme=True)
    uid = helpers.uid()
    with Receiver({"/in": [200]}) as receiver:
        sub = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/in", "event_types": ["grant.committed"], "programme_wide": True,
            "owner_email": "o@example.org"}).json()
        service.stop()
        service.start(WEBHOOK_ALLOWED_NETWORKS="")
        await upstream.publish(upstream.committed(f"app-{uid}", f"call-{uid}"))
        log = await helpers.eventually(lambda: _attempts(service, manager, sub["subscription_id"]), 30,
                                       "an attempt")
        assert [a["error"] for a in log] == ["refused target"] and log[0]["status_code"] is None
        assert receiver.requests == []


def _attempts(service, headers, subscription_id):
    log = httpx.get(f"{service.url}/webhooks/subscriptions/{subscription_id}/deliveries", headers=headers).json()
    return log[0]["log"] if log and log[0]["log"] else None


def _delivered(service, headers, subscription_id):
    log = httpx.get(f"{service.url}/webhooks/subscriptions/{subscription_id}/deliveries", headers=headers).json()
    return log if log and log[0]["status"] == "delivered" else None


def _status(service, headers, subscription_id):
    return httpx.get(f"{service.url}/webhooks/subscriptions/{subscription_id}", headers=headers).json()["status"]


async def test_a_scoped_subscription_hears_only_its_partnership_without_contact_data(
        run_service, upstream, token, helpers, stored):
    service = run_service("notifications", **LOCAL_RECEIVERS)
    subscriptions = f"{service.url}/webhooks/subscriptions"
    uid = helpers.uid()
    a, b = f"pa-{uid}", f"pb-{uid}"
    manager_a = token("programme_manager", subject="ma", partnership_ids=(a,))
    manager_b = token("programme_manager", subject="mb", partnership_ids=(b,))
    programme = token("programme_manager", subject="pw", programme=True)
    wanted = ["application.submitted", "grant.committed"]
    with Receiver({"/a": [200], "/b": [200], "/w": [200]}) as receiver:
        def subscribe(headers, path, **scope):
            answer = httpx.post(subscriptions, headers=headers, json={
                "url": f"{receiver.url}{path}", "event_types": wanted, "owner_email": f"{path[1:]}@example.org",
                **scope})
            assert answer.status_code == 201, answer.text
            return answer.json()["subscription_id"]

        sub_a = subscribe(manager_a, "/a", partnership_ids=[a])
        sub_b = subscribe(manager_b, "/b", partnership_ids=[b])
        sub_w = subscribe(programme, "/w", programme_wide=True)
        # nobody subscribes beyond their partnerships
        for headers, scope in ((manager_a, {"partnership_ids": [b]}), (manager_a, {"partnership_ids": [a, b]}),
                               (manager_a, {"programme_wide": True}),
                               (token("grant_officer", partnership_ids=(b,)), {"partnership_ids": [a]})):
            answer = httpx.post(subscriptions, headers=headers, json={
                "url": f"{receiver.url}/x", "event_types": ["*"], "owner_email": "x@example.org", **scope})
            assert answer.status_code == 403, (scope, answer.text)

        apps = {a: f"app-a-{uid}", b: f"app-b-{uid}"}
        people = {p: (helpers.participant(f"Visitor {p}", "FR", "Lyon", "fr"),
                      helpers.participant(f"Host {p}", "DE", "Jena", "de")) for p in apps}
        await upstream.publish(*(upstream.call(f"call-{p}", partnership_id=p) for p in apps))
        await stored("calls", {"_id": {"$in": [f"call-{p}" for p in apps]}}, "the calls", count=2)
        await upstream.publish(*(upstream.submitted(app, f"call-{p}", *people[p], partnership_id=p)
                                 for p, app in apps.items()),
                               *(upstream.committed(app, f"call-{p}") for p, app in apps.items()))
        await helpers.eventually(lambda: len(receiver.to("/w")) == 4 and len(receiver.to("/a")) == 2
                                 and len(receiver.to("/b")) == 2, 30, "the deliveries")

        def heard(path):
            return sorted((json.loads(body)["type"].split(".")[-2], json.loads(body)["subject"])
                          for _, body in receiver.to(path))
        assert heard("/a") == [("committed", apps[a]), ("submitted", apps[a])]
        assert heard("/b") == [("committed", apps[b]), ("submitted", apps[b])]
        # (the grant event names no partnership: its call's is used)
        for path, p in (("/a", a), ("/b", b)):
            for _, body in receiver.to(path):
                assert "contact" not in body.decode() and "@" not in body.decode()  # no names, emails, phones
                event = json.loads(body)
                if event["type"].endswith("submitted.v1"):  # the rest of the event is there
                    assert event["data"]["visitor"]["legal_name"] == f"Visitor {p}"
        programme_wide = [json.loads(body) for _, body in receiver.to("/w")]
        assert {e["data"]["visitor"]["contact"]["email"] for e in programme_wide if "visitor" in e["data"]} == {
            people[a][0].contact.email, people[b][0].contact.email}

        # A grant event before its submission, of a call not known here: its partnership is not known
        # yet, so it waits (parked) for the submission, then goes to partnership A's subscription too.
        late = f"app-late-{uid}"
        await upstream.publish(upstream.committed(late, f"call-late-{uid}"))
        await stored("parked", {"application_id": late}, "the parked grant event")
        await helpers.eventually(lambda: len(receiver.to("/w")) == 5, 30, "the programme-wide delivery")
        assert len(receiver.to("/a")) == 2
        await upstream.publish(upstream.submitted(late, f"call-late-{uid}", *people[a], partnership_id=a))
        await helpers.eventually(lambda: len(receiver.to("/a")) == 4, 30, "the late deliveries to A")
        assert heard("/a")[:2] == [("committed", apps[a]), ("committed", late)] and len(receiver.to("/b")) == 2

        # Managing: each manager only what lies within his partnerships; the programme-wide one all.
        listed = {name: {s["subscription_id"] for s in httpx.get(subscriptions, headers=h).json()}
                  for name, h in (("a", manager_a), ("b", manager_b), ("w", programme))}
        assert listed == {"a": {sub_a}, "b": {sub_b}, "w": {sub_a, sub_b, sub_w}}
        for sub in (sub_b, sub_w):
            for method, path in (("GET", ""), ("GET", "/deliveries"), ("POST", "/enable"), ("POST", "/disable"),
                                 ("POST", "/rotation"), ("DELETE", "")):
                answer = httpx.request(method, f"{subscriptions}/{sub}{path}", headers=manager_a)
                assert answer.status_code == 403, (sub, method, path)
        deliveries = httpx.get(f"{subscriptions}/{sub_a}/deliveries", headers=manager_a).json()
        assert {d["subject"] for d in deliveries} == {apps[a], late}
        assert {d["partnership_id"] for d in deliveries} == {a}
        assert len(httpx.get(f"{subscriptions}/{sub_a}/deliveries", headers=programme).json()) == 4
        disabled = httpx.post(f"{subscriptions}/{sub_a}/disable", headers=manager_a)
        assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
        assert httpx.get(f"{subscriptions}/{sub_b}", headers=manager_b).json()["status"] == "active"
        assert httpx.delete(f"{subscriptions}/{sub_b}", headers=manager_b).status_code == 204


async def test_a_rotated_secret_signs_beside_the_new_one_during_its_grace_period(run_service, upstream, token,
                                                                                 helpers):
    service = run_service("notifications", **LOCAL_RECEIVERS)
    subscriptions = f"{service.url}/webhooks/subscriptions"
    manager = token("programme_manager", subject="pw", programme=True)
    uid = helpers.uid()
    with Receiver({"/in": [200]}) as receiver:
        first = httpx.post(subscriptions, headers=manager, json={
            "url": f"{receiver.url}/in", "event_types": ["grant.committed"], "programme_wide": True,
            "owner_email": "o@example.org"}).json()
        rotation = f"{subscriptions}/{first['subscription_id']}/rotation"
        second = httpx.post(rotation, headers=manager, json={"grace_seconds": 3600})
        assert second.status_code == 200 and "previous_secret" not in second.json()
        second = second.json()["secret"]
        assert second != first["secret"] and len(second) >= 32
        await upstream.publish(upstream.committed(f"app-1-{uid}", f"call-{uid}"))
        await helpers.eventually(lambda: len(receiver.to("/in")) == 1, 30, "the first delivery")
        headers, body = receiver.to("/in")[0]
        assert headers[HEADER].count("v1=") == 2
        assert verify_signature(second, headers[HEADER], body) and verify_signature(first["secret"], headers[HEADER],
                                                                                     body)
        # Rotated again with no grace: from now on only the newest secret signs.
        third = httpx.post(rotation, headers=manager, json={"grace_seconds": 0}).json()["secret"]
        await upstream.publish(upstream.committed(f"app-2-{uid}", f"call-{uid}"))
        await helpers.eventually(lambda: len(receiver.to("/in")) == 2, 30, "the second delivery")
        headers, body = receiver.to("/in")[1]
        assert headers[HEADER].count("v1=") == 1 and verify_signature(third, headers[HEADER], body)
        assert not verify_signature(second, headers[HEADER], body)
        assert not verify_signature(first["secret"], headers[HEADER], body)

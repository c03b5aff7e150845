"""Signed webhooks received by a real local HTTP server, with retries and disablement."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from notifications.signature import HEADER, verify_signature

pytestmark = pytest.mark.infra


class Receiver:
    """A subscriber's endpoint: answers each path with a scripted sequence of statuses."""

    def __init__(self, script: dict[str, list[int]]):
        self.script, self.requests = script, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body))
                statuses = receiver.script[self.path]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()

    def to(self, path: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]


async def test_signed_delivery_retried_after_500s_and_disabled_after_persistent_failure(
        run_service, upstream, sink, token, helpers):
    service = run_service("notifications", WEBHOOK_BACKOFF_SECONDS="0.2", WEBHOOK_MAX_ATTEMPTS="3",
                          WEBHOOK_DISABLE_AFTER_SECONDS="0")
    uid = helpers.uid()
    app_id, call_id = f"app-{uid}", f"call-{uid}"
    owner = f"crm-owner-{uid}@example.org"
    manager = token("programme_manager", subject=f"crm-{uid}", programme=True)
    with Receiver({"/finance": [500, 500, 200], "/broken": [500]}) as receiver:
        finance = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/finance", "event_types": ["grant.committed"], "owner_email": owner}).json()
        broken = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/broken", "event_types": ["eu.clusterxchange.grant.committed.v1"],
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
        assert failed[0]["status"] == "failed" and len(failed[0]["log"]) == 3
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
    service = run_service("notifications", WEBHOOK_ALLOW_PRIVATE_URLS="false")
    body = {"url": "https://crm.example.org/hook", "event_types": ["grant.commited"], "owner_email": "o@example.org"}
    assert httpx.post(f"{service.url}/webhooks/subscriptions", json=body).status_code == 401
    assert httpx.post(f"{service.url}/webhooks/subscriptions", json=body,
                      headers=token("visitor")).status_code == 403
    problem = httpx.post(f"{service.url}/webhooks/subscriptions", json=body, headers=token("programme_manager", programme=True))
    assert problem.status_code == 422 and "grant.commited" in problem.json()["detail"]
    private = httpx.post(f"{service.url}/webhooks/subscriptions", headers=token("programme_manager", programme=True),
                         json={**body, "url": "http://169.254.169.254/latest", "event_types": ["*"]})
    assert private.status_code == 422 and private.json()["errors"][0]["field"] == "url"
    mine = httpx.post(f"{service.url}/webhooks/subscriptions", headers=token("grant_officer", subject="gina"),
                      json={**body, "event_types": ["*"]}).json()
    other = token("grant_officer", subject="otto")
    theirs = f"{service.url}/webhooks/subscriptions/{mine['subscription_id']}"
    assert httpx.get(theirs, headers=other).status_code == 403
    assert httpx.get(f"{service.url}/webhooks/subscriptions", headers=other).json() == []


def _delivered(service, headers, subscription_id):
    log = httpx.get(f"{service.url}/webhooks/subscriptions/{subscription_id}/deliveries", headers=headers).json()
    return log if log and log[0]["status"] == "delivered" else None


def _status(service, headers, subscription_id):
    return httpx.get(f"{service.url}/webhooks/subscriptions/{subscription_id}", headers=headers).json()["status"]

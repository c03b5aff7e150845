"""Personal data is kept no longer than configured: the mail log, webhook deliveries and events
parked for an application that never came are deleted once their retention has run out, each
after its own, and nothing before (the service's clock is moved ahead instead of waiting days)."""

from __future__ import annotations

import httpx
import pytest
from cx_shared.testing.webhooks import LOCAL_RECEIVERS, Receiver
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.infra
DAY = 24 * 3600
RETENTION = {"MAIL_LOG_RETENTION_DAYS": "180", "WEBHOOK_DELIVERY_RETENTION_DAYS": "30",
             "PARKED_EVENT_RETENTION_DAYS": "30", "RETENTION_SWEEP_SECONDS": "0.2", **LOCAL_RECEIVERS}


async def test_mail_log_deliveries_and_parked_events_expire_each_after_its_retention(
        run_service, upstream, sink, token, helpers, stored, infra, namespace):
    service = run_service("notifications", **RETENTION)
    uid = helpers.uid()
    app_id, call_id, never = f"app-{uid}", f"call-{uid}", f"app-never-{uid}"
    visitor = helpers.participant("Cluster Gent", "BE", "Gent", "en", f"visitor-{uid}@example.org")
    host = helpers.participant("Hub Tallinn", "EE", "Tallinn", "en", f"host-{uid}@example.org")
    manager = token("programme_manager", subject=f"crm-{uid}", programme=True)
    with Receiver({"/crm": [200]}) as receiver:
        sub = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
            "url": f"{receiver.url}/crm", "event_types": ["application.submitted"], "programme_wide": True,
            "owner_email": f"crm-{uid}@example.org"}).json()
        await upstream.publish(upstream.submitted(app_id, call_id, visitor, host, start_in_days=40),
                               upstream.approved(never, call_id))  # of an application that never comes
        await sink.wait_for(visitor.contact.email, subject="was received")
        await helpers.eventually(lambda: _deliveries(service, manager, sub) == ["delivered"], 30, "delivered")
        await stored("parked", {"application_id": never}, "the approval parked")
        await helpers.eventually(lambda: "sent" in _mail_log(service, manager, app_id), 30, "mail log")
        mail_log = _mail_log(service, manager, app_id)

        service.kill()  # 31 days later: the deliveries' and the parked event's time is up, not the mail log's
        service.start(CLOCK_OFFSET_SECONDS=str(31 * DAY))
        await helpers.eventually(lambda: _deliveries(service, manager, sub) == [], 30, "deliveries deleted")
        await _wait_gone(infra, namespace, helpers, "parked", {"application_id": never})
        assert _mail_log(service, manager, app_id) == mail_log

        service.kill()  # 181 days later: the mail log's too
        service.start(CLOCK_OFFSET_SECONDS=str(181 * DAY))
        await helpers.eventually(lambda: _mail_log(service, manager, app_id) == [], 30, "mail log deleted")


def _deliveries(service, headers, sub) -> list[str]:
    url = f"{service.url}/webhooks/subscriptions/{sub['subscription_id']}/deliveries"
    return [d["status"] for d in httpx.get(url, headers=headers).json()]


def _mail_log(service, headers, app_id) -> list[str]:
    log = httpx.get(f"{service.url}/notifications", params={"application_id": app_id}, headers=headers).json()
    return sorted(n["status"] for n in log)


async def _wait_gone(infra, namespace, helpers, collection: str, query: dict) -> None:
    client = AsyncMongoClient(infra.mongodb_url)
    try:
        db = client[f"{namespace.replace('.', '')}_notifications"]

        async def gone() -> bool:
            return await db[collection].count_documents(query) == 0
        await helpers.eventually(gone, 30, f"{collection} deleted")
    finally:
        await client.close()

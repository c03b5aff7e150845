"""The delivery step against the real database, with the resolver and the HTTP transport
injected: the DNS cases (a name that changes address after its subscription was created) need a
resolver the test controls, which this machine has no other way to give."""

from __future__ import annotations

import httpx
import pytest

from notifications import targets
from notifications.settings import Settings
from notifications.storage import Storage
from notifications.workers import deliver_next_webhook

pytestmark = pytest.mark.infra
URL = "https://hooks.example.org/in"


class Resolver:
    """A name server whose answer the test changes (DNS rebinding)."""

    def __init__(self, address: str):
        self.address, self.asked = address, 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked += 1
        return [self.address]


class Endpoint:
    """The HTTP transport: records what would go on the wire, answers or fails as told."""

    def __init__(self, fail: Exception | None = None):
        self.requests: list[httpx.Request] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        return httpx.Response(204)


@pytest.fixture
async def storage(mongo_db):
    storage = Storage(mongo_db, Settings(webhook_max_attempts=5))
    await storage.init()
    return storage


async def deliver(storage: Storage, endpoint: Endpoint, resolver, event_id: str, url: str = URL) -> dict:
    sub = await storage.subscriptions.find_one({}) or await storage.add_subscription(
        {"url": url, "event_types": ["*"], "partnership_ids": ["p-1"], "programme_wide": False,
         "secret": "s" * 32, "owner": "gina", "owner_email": "gina@example.org"})
    delivery_id = f"{sub['_id']}:{event_id}"
    await storage.enqueue_delivery({"_id": delivery_id, "subscription_id": sub["_id"], "event_id": event_id,
                                    "event_type": "t", "subject": "app-1", "body": '{"id":"e"}'})
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        assert await deliver_next_webhook(storage, client, delivery_id, resolver=resolver)
    return await storage.deliveries.find_one({"_id": delivery_id})


async def test_the_name_is_resolved_at_every_delivery_and_the_checked_address_pinned(storage):
    resolver, endpoint = Resolver("93.184.216.34"), Endpoint()
    first = await deliver(storage, endpoint, resolver, "e-1")
    assert first["status"] == "delivered"
    (request,) = endpoint.requests
    assert request.url.host == "93.184.216.34"  # the connection goes to the address checked...
    assert request.headers["Host"] == "hooks.example.org"  # ...the name only in Host and TLS
    assert request.extensions["sni_hostname"] == "hooks.example.org"

    resolver.address = "10.0.0.7"  # the name now points inside (DNS rebinding)
    second = await deliver(storage, endpoint, resolver, "e-2")
    assert resolver.asked == 2 and len(endpoint.requests) == 1  # resolved again; nothing sent
    assert second["status"] == "pending" and second["log"][-1]["error"] == "refused target"
    resolver.address = "169.254.169.254"
    assert (await deliver(storage, endpoint, resolver, "e-3"))["log"][-1]["error"] == "refused target"
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize(("failure", "logged"), [
    (httpx.ConnectError("[Errno 111] Connect call failed ('93.184.216.34', 22)"), "connection failed"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response: SSH-2.0-OpenSSH_9.6"),
     "connection failed"),
    (httpx.ConnectTimeout("timed out connecting to 93.184.216.34:5432"), "timeout")])
async def test_the_delivery_log_keeps_a_generic_error_never_the_low_level_one(storage, failure, logged):
    delivery = await deliver(storage, Endpoint(fail=failure), Resolver("93.184.216.34"), "e-1")
    assert [a["error"] for a in delivery["log"]] == [logged]
    sub = await storage.subscription(delivery["subscription_id"])
    assert sub["last_error"] == logged


@pytest.mark.parametrize("url", ["https://127.0.0.1/in", "https://10.0.0.8/in", "https://192.168.1.1/in",
                                 "https://169.254.169.254/latest", "https://[::1]/in", "https://localhost/in",
                                 "http://hooks.example.org/in"])
async def test_a_stored_target_that_is_not_allowed_is_refused_at_delivery(storage, url):
    """As if it had been created under a looser policy: the delivery checks again (``localhost``
    through this machine's own resolver)."""
    endpoint = Endpoint()
    delivery = await deliver(storage, endpoint, targets.system_resolver, "e-1", url)
    assert [a["error"] for a in delivery["log"]] == ["refused target"] and endpoint.requests == []

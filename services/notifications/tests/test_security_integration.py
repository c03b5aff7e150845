"""Issue 23's findings in notifications: roles per partnership, bounded staff and subscription
fields, a webhook subscription that stops when its owner leaves (and whose secret only he
receives), unsubscribe tokens kept out of logs and answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx
import pytest
from pymongo import AsyncMongoClient
from cx_shared.auth import issue_token
from cx_shared.settings import ServiceSettings
from cx_shared.testing.services import free_port
from cx_shared.testing.webhooks import LOCAL_RECEIVERS, Receiver

pytestmark = pytest.mark.infra


def mixed(subject: str, roles: dict[str, list[str]], *flat: str) -> dict[str, str]:
    """A token with different staff roles in different partnerships."""
    s = ServiceSettings()
    held = sorted({r for rs in roles.values() for r in rs} | set(flat))
    jwt = issue_token(s.jwt_secret, s.jwt_issuer, subject, held, partnership_roles=roles)
    return {"Authorization": f"Bearer {jwt}"}


def subscription(url: str, partnership: str, owner: str = "owner@example.org") -> dict:
    return {"url": url, "event_types": ["grant.committed"], "partnership_ids": [partnership], "owner_email": owner}


async def test_a_role_in_one_partnership_acts_in_no_other(run_service, token, helpers):
    """An assessor of A who is a grant officer (or manager) of B is no officer or manager in A."""
    service = run_service("notifications")
    uid = helpers.uid()
    a, b = f"ptn-a-{uid}", f"ptn-b-{uid}"
    officer_of_b = mixed(f"ana-{uid}", {a: ["assessor"], b: ["grant_officer"]})
    manager_of_b = mixed(f"max-{uid}", {a: ["assessor"], b: ["programme_manager"]})
    hook = "https://crm.example.org/hook"
    assert httpx.post(f"{service.url}/webhooks/subscriptions", headers=officer_of_b,
                      json=subscription(hook, a)).status_code == 403
    assert httpx.post(f"{service.url}/webhooks/subscriptions", headers=officer_of_b,
                      json=subscription(hook, b)).status_code == 201
    member = {"partnership_id": a, "role": "assessor", "name": "Eve", "email": f"eve-{uid}@example.org"}
    assert httpx.post(f"{service.url}/staff", headers=manager_of_b, json=member).status_code == 403
    assert httpx.post(f"{service.url}/staff", headers=manager_of_b,
                      json={**member, "partnership_id": b}).status_code == 201
    # A's subscription, made by A's manager: B's manager (assessor in A) neither sees nor manages it.
    made = httpx.post(f"{service.url}/webhooks/subscriptions", headers=token("programme_manager", subject=f"m-{uid}",
                      partnership_ids=(a,)), json=subscription(hook, a)).json()
    assert httpx.get(f"{service.url}/webhooks/subscriptions/{made['subscription_id']}",
                     headers=manager_of_b).status_code == 403
    assert made["subscription_id"] not in [s["subscription_id"] for s in httpx.get(
        f"{service.url}/webhooks/subscriptions", headers=manager_of_b).json()]


async def test_staff_and_subscription_fields_are_bounded_and_documented(run_service, token, helpers):
    service = run_service("notifications")
    uid = helpers.uid()
    manager = token("programme_manager", subject=f"m-{uid}", partnership_ids=(f"p-{uid}",))
    member = {"partnership_id": f"p-{uid}", "role": "assessor", "name": "N" * 201, "email": f"n-{uid}@example.org"}
    for field, value in (("name", "N" * 201), ("language", "x" * 36), ("partnership_id", "p" * 101)):
        answer = httpx.post(f"{service.url}/staff", headers=manager, json={**member, "name": "N", field: value})
        assert answer.status_code == 422, (field, answer.text)
        assert field in json.dumps(answer.json()["errors"]), field
    long_type = httpx.post(f"{service.url}/webhooks/subscriptions", headers=manager, json={
        **subscription("https://crm.example.org/hook", f"p-{uid}"), "event_types": ["x" * 201]})
    assert long_type.status_code == 422 and "event_types" in long_type.text
    schemas = httpx.get(f"{service.url}/openapi.json").json()["components"]["schemas"]
    staff = schemas["StaffMember"]["properties"]
    assert staff["name"]["maxLength"] == 200 and staff["language"]["maxLength"] == 35
    assert staff["partnership_id"]["maxLength"] == 100 and staff["email"]["maxLength"] == 254
    wanted = schemas["NewSubscription"]["properties"]
    assert wanted["event_types"]["items"]["maxLength"] == 200
    assert wanted["partnership_ids"]["items"]["maxLength"] == 100


async def test_a_subscription_stops_when_its_owner_leaves_and_only_he_receives_its_secret(
        run_service, upstream, token, helpers, stored):
    service = run_service("notifications", **LOCAL_RECEIVERS)
    uid = helpers.uid()
    p = f"ptn-{uid}"
    subscriptions = f"{service.url}/webhooks/subscriptions"
    owner = token("grant_officer", subject=f"gina-{uid}", partnership_ids=(p,))
    left = token("grant_officer", subject=f"gina-{uid}", partnership_ids=(f"ptn-elsewhere-{uid}",))
    manager = token("programme_manager", subject=f"mia-{uid}", partnership_ids=(p,))
    call_id = f"call-{uid}"
    await upstream.publish(upstream.call(call_id, partnership_id=p))
    await stored("calls", {"_id": call_id}, "the call")  # its events then belong to p
    with Receiver({"/in": [200], "/witness": [200]}) as receiver:
        sub = httpx.post(subscriptions, headers=owner, json=subscription(f"{receiver.url}/in", p)).json()
        one = f"{subscriptions}/{sub['subscription_id']}"
        witness = httpx.post(subscriptions, headers=token("programme_manager", subject=f"w-{uid}", programme=True),
                             json={**subscription(f"{receiver.url}/witness", p), "partnership_ids": [],
                                   "programme_wide": True})
        assert witness.status_code == 201, witness.text
        # A manager of its partnership may look, suspend and delete, never receive the secret.
        assert httpx.post(f"{one}/rotation", headers=manager).status_code == 403
        rotated = httpx.post(f"{one}/rotation", headers=owner)
        assert rotated.status_code == 200 and len(rotated.json()["secret"]) >= 32
        assert "secret" not in httpx.get(one, headers=manager).json()
        await upstream.publish(upstream.committed(f"app-1-{uid}", call_id))
        await helpers.eventually(lambda: len(receiver.to("/in")) == 1, 30, "the first delivery")

        # The owner left the partnership: his next call shows it, and the subscription stops.
        gone = httpx.get(one, headers=left)
        assert gone.status_code == 403 and "suspended" in gone.json()["detail"]
        shown = httpx.get(one, headers=manager).json()
        assert (shown["status"], shown["disabled_reason"]) == ("disabled", "owner_left")
        assert httpx.post(f"{one}/enable", headers=manager).status_code == 403  # only the owner vouches
        await upstream.publish(upstream.committed(f"app-2-{uid}", call_id))
        await helpers.eventually(lambda: len(receiver.to("/witness")) == 2, 30, "the second event handled")
        assert len(receiver.to("/in")) == 1  # not delivered to the suspended one
        assert httpx.delete(one, headers=manager).status_code == 204


async def test_a_subscription_whose_owner_did_not_show_up_for_long_is_suspended(run_service, upstream, token,
                                                                                helpers, stored):
    """The periodic check: no call by its owner for WEBHOOK_OWNER_CHECK_DAYS (0 here) and the next
    delivery finds it lapsed: suspended, nothing sent; the owner, still staff, enables it again."""
    service = run_service("notifications", WEBHOOK_OWNER_CHECK_DAYS="0", **LOCAL_RECEIVERS)
    uid = helpers.uid()
    p = f"ptn-{uid}"
    owner = token("grant_officer", subject=f"gina-{uid}", partnership_ids=(p,))
    await upstream.publish(upstream.call(f"call-{uid}", partnership_id=p))
    await stored("calls", {"_id": f"call-{uid}"}, "the call")
    with Receiver({"/in": [200]}) as receiver:
        sub = httpx.post(f"{service.url}/webhooks/subscriptions", headers=owner,
                         json=subscription(f"{receiver.url}/in", p)).json()
        one = f"{service.url}/webhooks/subscriptions/{sub['subscription_id']}"
        await upstream.publish(upstream.committed(f"app-{uid}", f"call-{uid}"))
        await helpers.eventually(lambda: httpx.get(one, headers=owner).json()["status"] == "disabled", 30,
                                 "suspended at the delivery")
        assert httpx.get(one, headers=owner).json()["disabled_reason"] == "owner_left"
        assert receiver.requests == []


async def test_unsubscribe_tokens_stay_out_of_logs_and_answers(run_service, upstream, sink, helpers):
    port = free_port()
    service = run_service("notifications", HTTP_PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    uid = helpers.uid()
    visitor = helpers.participant("Cluster Gent", "BE", "Gent", "en", f"v-{uid}@example.org")
    host = helpers.participant("Hub Tallinn", "EE", "Tallinn", "en", f"h-{uid}@example.org")
    await upstream.publish(upstream.submitted(f"app-{uid}", f"call-{uid}", visitor, host))
    received = (await sink.wait_for(visitor.contact.email, subject="was received"))[0]
    link = received["headers"]["List-Unsubscribe"].strip().strip("<>")
    token = link.rsplit("/", 1)[1]
    page = httpx.get(link)
    # the page's button POSTs the token in the body, to a URL without it
    assert re.search(r'action="\.\./unsubscribe"', page.text) and f'name="token" value="{token}"' in page.text
    done = httpx.post(f"{service.url}/unsubscribe", data={"token": token})
    assert done.status_code == 200 and "no longer" in done.text
    again = httpx.post(f"{service.url}/resubscribe", json={"token": token})
    assert again.status_code == 200 and again.json() == {"optional_messages": True}  # no address
    assert visitor.contact.email not in again.text
    bad = httpx.post(f"{service.url}/resubscribe", json={"token": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "token"
    assert httpx.post(link).status_code == 200  # mail clients' one-click POST to the link itself
    log = service.log_path.read_text(errors="replace")
    assert '"GET /unsubscribe/{token} HTTP/1.1" 200' in log  # the access log has the requests...
    assert token not in log  # ...and never the token


async def test_a_new_contact_address_hears_only_its_confirmation_until_confirmed(
        run_service, upstream, sink, helpers, stored, service_env, infra):
    """Anyone may enrol an organisation with any contact address: the platform's first email there
    is a confirmation showing nothing the enroller wrote; what else concerns it waits (held) until
    the link is followed, then goes; the confirmation survives a rebuild."""
    port = free_port()
    service = run_service("notifications", HTTP_PORT=str(port), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                          MAIL_POLL_SECONDS="0.3")
    uid = helpers.uid()
    victim = f"victim-{uid}@example.org"
    visitor = helpers.participant("Buy cheap pills at spam.example", "BE", "Gent", "fr", victim)
    host = helpers.participant("Hub Tallinn", "EE", "Tallinn", "en", f"h-{uid}@example.org")
    await upstream.publish(upstream.enrolled(visitor, "visitor"), confirmed=False)
    (first,) = await sink.wait_for(victim, subject="ClusterXchange")
    assert "confirmer" in first["subject"].lower()  # in the contact's language
    shown = json.dumps(first)
    assert "spam.example" not in shown and "Contact of" not in shown  # nothing the enroller chose
    link = re.search(r"http://127\.0\.0\.1:\d+/confirmations/[\w-]+", shown)[0]
    token = link.rsplit("/", 1)[1]

    await upstream.publish(upstream.submitted(f"app-{uid}", f"call-{uid}", visitor, host), confirmed=False)
    await stored("notifications", {"application_id": f"app-{uid}", "recipient.email": victim, "status": "held"},
                 "the submission's email to the visitor, held")
    await upstream.confirm(host.contact.email)
    assert httpx.get(link).status_code == 200  # the page (a scanner following the link confirms nothing)
    assert [m["subject"] for m in sink.to(victim)] == [first["subject"]]
    done = httpx.post(f"{service.url}/confirmations", data={"token": token})
    assert done.status_code == 200 and "confirmed" in done.text
    await sink.wait_for(victim, subject="reçue")  # the held email goes now
    assert len([m for m in sink.to(victim) if m["subject"] == first["subject"]]) == 1  # asked once
    assert token not in service.log_path.read_text(errors="replace")

    # A rebuild copies the confirmation: nothing is held again, nothing is asked again.
    live = service_env("notifications")["MONGODB_DATABASE"]
    env = {**os.environ, **service_env("notifications", MONGODB_DATABASE=f"{live}_rebuilt")}
    done = subprocess.run([sys.executable, "-m", "notifications.rebuild", "--drop", "--configuration-from", live],
                          capture_output=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr.decode()
    client = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    try:
        rebuilt = client[f"{live}_rebuilt"]
        assert await rebuilt.confirmed_addresses.count_documents({"_id": victim}) == 1
        assert await rebuilt.notifications.count_documents({"status": "held", "recipient.email": victim}) == 0
    finally:
        await client.drop_database(f"{live}_rebuilt")
        await client.close()

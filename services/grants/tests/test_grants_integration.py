"""The grants service as a real process over the real broker and database: commitment on
HostAccepted, redelivery, release exactly once, the agreement PDF, payments (a confirmation of
another call refused), the balance verified by a second officer, reconciliation."""

from __future__ import annotations

import asyncio
import io

import pytest
from pypdf import PdfReader

from cx_shared.events.grants import (ActionInitiated, ActionVerified, BudgetOpened, CommitmentReduced,
                                     CommitmentReleased, GrantAgreementIssued, GrantCommitted, GrantRefused,
                                     PaymentOrdered, PaymentSettled)
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra

BUDGET = 2_000_000
# Brussels -> Vilnius is about 1,500 km: band 500-1999 km, green 320.00; Lithuania is in group 3 (140.00 a day).
GREEN_500_1999, GROUP_3_DAILY = 32_000, 14_000


def euros(cents: int) -> str:
    return f"EUR {cents // 100:,}.{cents % 100:02d}"


async def wait_until(predicate, timeout: float = 30, what: str = "condition"):
    for _ in range(int(timeout * 10)):
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_grant_lifecycle_over_the_broker(run_service, infra, namespace, publish, upstream, drained, http,
                                               token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    visitor = token("visitor", subject="alice", organisation_id="org-v")
    call_id, app, other = upstream.new_id("call"), upstream.new_id("app"), upstream.new_id("app")
    host_accepted = upstream.host_accepted(app, call_id)

    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        # Foundation flow: the call's budget, the application's facts, the host's acceptance.
        await publish(upstream.call_published(call_id, BUDGET), upstream.application_submitted(app, call_id),
                      upstream.application_approved(app, call_id), host_accepted)
        committed = await grants_topic.wait_for(lambda: grants_topic.of_type(GrantCommitted, app), 60, "commitment")
        grant = committed[0].event()
        expected = GREEN_500_1999 + 10 * GROUP_3_DAILY
        assert (grant.travel_cents, grant.subsistence_cents, grant.total_cents) == (GREEN_500_1999,
                                                                                    10 * GROUP_3_DAILY, expected)
        assert grant.rule_set_version == "default-v1" and grant.available_after_cents == BUDGET - expected
        assert committed[0].causationid == host_accepted.id
        assert committed[0].correlationid == host_accepted.correlationid

        budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
        assert {k: budget[k] for k in ("budget_cents", "available_cents",
                                                                  "committed_cents", "paid_cents")} == {
            "budget_cents": BUDGET, "available_cents": BUDGET - expected, "committed_cents": expected,
            "paid_cents": 0}
        assert (await http.get(f"{grants.url}/calls/{call_id}/budget")).status_code == 401
        assert (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=visitor)).status_code == 403

        # Redelivery of the same event, and a second acceptance of the same exchange: no second commitment.
        again = upstream.host_accepted(app, call_id)
        await publish(host_accepted, again)
        # A second exchange, whose host declines after accepting: it is released, exactly once.
        declined = upstream.host_declined(other, call_id)
        await publish(upstream.application_submitted(other, call_id, travel_mode="standard"),
                      *upstream.approved_and_accepted(other, call_id))
        await grants_topic.wait_for(lambda: grants_topic.of_type(GrantCommitted, other), 60, "second commitment")
        await publish(declined)
        await grants_topic.wait_for(lambda: grants_topic.of_type(CommitmentReleased, other), 60, "release")
        withdrawn = upstream.application_withdrawn(other, call_id)
        await publish(declined, withdrawn)
        await drained(grants_topic)  # the redeliveries, the repeated decline and the withdrawal have been handled

        assert len(grants_topic.of_type(GrantCommitted, app)) == 1
        assert len(grants_topic.of_type(CommitmentReleased, other)) == 1
        budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
        assert budget["available_cents"] == BUDGET - expected and budget["committed_cents"] == expected

        # The agreement: issued with the commitment, downloadable by the visitor, naming the amounts.
        issued = grants_topic.of_type(GrantAgreementIssued, app)[0].event()
        pdf = await http.get(f"{grants.url}/agreements/{app}/document", headers=visitor)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        prefinancing = expected * 70 // 100
        assert euros(expected) in text and euros(prefinancing) in text and "Visitor Cluster asbl" in text
        assert issued.document_sha256 == __import__("hashlib").sha256(pdf.content).hexdigest()
        stranger = token("visitor", subject="mallory", organisation_id="org-x")
        assert (await http.get(f"{grants.url}/agreements/{app}/document", headers=stranger)).status_code == 403
        assert (await http.post(f"{grants.url}/agreements/{app}/acceptance", headers=stranger)).status_code == 403

        # Acceptance orders the pre-financing; the finance system confirms it.
        accepted = await http.post(f"{grants.url}/agreements/{app}/acceptance", headers=visitor)
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        assert (await http.post(f"{grants.url}/agreements/{app}/acceptance", headers=visitor)).status_code == 409
        order = (await grants_topic.wait_for(lambda: grants_topic.of_type(PaymentOrdered, app), 30, "order"))[0]
        assert order.event().kind == "prefinancing" and order.event().amount_cents == prefinancing
        # Issue 23 (7): a confirmation naming another call (Y) settles nothing, on X or on Y; it
        # comes first, on the same key, so the right one's settlement proves it was handled.
        other_call = upstream.new_id("call")
        await publish(upstream.call_published(other_call, BUDGET))
        await grants_topic.wait_for(lambda: grants_topic.of_type(BudgetOpened, other_call), 30, "call Y's budget")
        wrong = upstream.payment_confirmed(order.event().payment_id, app, other_call, prefinancing)
        confirmation = upstream.payment_confirmed(order.event().payment_id, app, call_id, prefinancing)
        await publish(wrong, confirmation, confirmation)  # a duplicate confirmation counts once
        await grants_topic.wait_for(lambda: grants_topic.of_type(PaymentSettled, app), 30, "settlement")
        assert [e.event().call_id for e in grants_topic.of_type(PaymentSettled, app)] == [call_id]
        y = (await http.get(f"{grants.url}/calls/{other_call}/budget", headers=officer)).json()
        assert (y["available_cents"], y["committed_cents"], y["paid_cents"]) == (BUDGET, 0, 0)
        y_recon = (await http.get(f"{grants.url}/calls/{other_call}/reconciliation", headers=officer)).json()
        assert y_recon["balanced"] and y_recon["entries"] == 1, y_recon

        # The report: the partnership's review (pm) accepted 7 working days instead of 10; that
        # initiates the balance, reduced by rule, which another officer verifies (four eyes).
        nothing = await http.post(f"{grants.url}/commitments/{app}/report-acceptance", headers=officer)
        assert nothing.status_code == 409 and "report" in nothing.text  # no accepted report yet
        await publish(upstream.report_accepted(app, call_id, 7, accepted_by="pm"))
        initiated = await grants_topic.wait_for(lambda: grants_topic.of_type(ActionInitiated, app), 30, "initiated")
        action_id = initiated[0].event().action_id
        reviewer = token("grant_officer", subject="pm", partnership_ids=("p-1",))
        assert (await http.post(f"{grants.url}/actions/{action_id}/verification", headers=reviewer)).status_code == 403
        report = await http.post(f"{grants.url}/actions/{action_id}/verification", headers=officer)
        assert report.status_code == 200 and report.json()["verified_by"] == "olga", report.text
        earned = GREEN_500_1999 + 7 * GROUP_3_DAILY
        orders = await grants_topic.wait_for(lambda: len(grants_topic.of_type(PaymentOrdered, app)) == 2
                                             and grants_topic.of_type(PaymentOrdered, app), 30, "balance order")
        balance = orders[1].event()
        assert balance.kind == "balance" and balance.amount_cents == earned - prefinancing
        assert (balance.accepted_by, balance.verified_by) == ("pm", "olga")
        assert grants_topic.of_type(ActionVerified, app)[0].event().initiated_by == "pm"
        reduced = grants_topic.of_type(CommitmentReduced, app)[0].event()
        assert reduced.released_cents == expected - earned
        await publish(upstream.payment_confirmed(balance.payment_id, app, call_id, balance.amount_cents))
        await grants_topic.wait_for(lambda: len(grants_topic.of_type(PaymentSettled, app)) == 2, 30, "balance paid")

        payments = (await http.get(f"{grants.url}/exchanges/{app}/payments", headers=visitor)).json()
        assert sorted((p["kind"], p["amount_cents"], p["status"]) for p in payments) == [
            ("balance", earned - prefinancing, "confirmed"), ("prefinancing", prefinancing, "confirmed")]
        await wait_until(lambda: paid(http, grants.url, call_id, officer, earned), what="paid balance")

        # The ledger alone explains every euro.
        recon = (await http.get(f"{grants.url}/calls/{call_id}/reconciliation", headers=officer)).json()
        assert recon["balanced"], recon["problems"]
        assert (recon["budget_cents"], recon["available_cents"], recon["committed_cents"], recon["paid_cents"]) == (
            BUDGET, BUDGET - earned, 0, earned)
        ledger = (await http.get(f"{grants.url}/calls/{call_id}/ledger", headers=officer)).json()
        kinds = [e["kind"] for e in ledger]
        assert kinds.count("commitment") == 2 and kinds.count("release") == 2  # decline + shorter exchange
        assert kinds.count("payment_ordered") == 2 and kinds.count("payment_confirmed") == 2
        assert all(e["actor"] and e["reason"] and e["at"] for e in ledger)
        assert grants_topic.of_type(GrantRefused) == []


async def test_an_unknown_city_refuses_the_grant_with_the_reason(run_service, infra, namespace, publish, upstream):
    run_service("grants")
    call_id, app = upstream.new_id("call"), upstream.new_id("app")
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        # The host's acceptance may overtake the call and the application: the grant waits for them.
        await publish(*upstream.approved_and_accepted(app, call_id))
        await publish(upstream.application_submitted(app, call_id, host_city="Atlantis", host_country="GR"))
        await asyncio.sleep(1)
        assert grants_topic.of_type(GrantRefused, app) == []
        await publish(upstream.call_published(call_id, BUDGET))
        refused = await grants_topic.wait_for(lambda: grants_topic.of_type(GrantRefused, app), 60, "refusal")
        assert "unknown city 'Atlantis'" in refused[0].event().reason
        assert grants_topic.of_type(GrantCommitted) == []


async def paid(http, url, call_id, headers, amount) -> bool:
    return (await http.get(f"{url}/calls/{call_id}/budget", headers=headers)).json()["paid_cents"] == amount


async def test_a_decline_before_the_facts_arrive_means_no_commitment(run_service, infra, namespace, publish, upstream,
                                                                     drained):
    run_service("grants")
    call_id, app = upstream.new_id("call"), upstream.new_id("app")
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(call_id, BUDGET), *upstream.approved_and_accepted(app, call_id),
                      upstream.host_declined(app, call_id))
        await drained(grants_topic)
        await publish(upstream.application_submitted(app, call_id))
        await drained(grants_topic)
        await asyncio.sleep(1)  # give the relay time to publish anything it would
        assert grants_topic.of_type(GrantCommitted, app) == [] and grants_topic.of_type(GrantRefused, app) == []

"""Grants consumes the follow-up events of the applications service (issue 7), as a real
process over the real broker and database: ReportAccepted initiates the balance reduced by rule
(once, whatever the redeliveries), which a second officer verifies (issue 23); ExchangeNoShow
releases the commitment exactly once."""

from __future__ import annotations

import pytest

from cx_shared.envelope import Envelope
from cx_shared.events.applications import ExchangeNoShow
from cx_shared.events.grants import (ActionInitiated, CommitmentReduced, CommitmentReleased, GrantCommitted,
                                     PaymentOrdered)
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra
BUDGET = 2_000_000
APPLICATIONS_SOURCE = "/clusterxchange/applications"
# Brussels -> Vilnius: band 500-1999 km, green 320.00; Lithuania in group 3 (140.00 a day); 10 working days planned.
GREEN_500_1999, GROUP_3_DAILY = 32_000, 14_000


async def test_report_accepted_orders_the_reduced_balance_and_a_no_show_releases_once(
        run_service, infra, namespace, publish, upstream, drained, http, token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    visitor = token("visitor", subject="alice", organisation_id="org-v")
    call_id, app, absent = upstream.new_id("call"), upstream.new_id("app"), upstream.new_id("app")
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as topic:
        await publish(upstream.call_published(call_id, BUDGET))
        for exchange in (app, absent):
            await publish(upstream.application_submitted(exchange, call_id),
                          *upstream.approved_and_accepted(exchange, call_id))
            await topic.wait_for(lambda e=exchange: topic.of_type(GrantCommitted, e), 60, "commitment")
        planned = GREEN_500_1999 + 10 * GROUP_3_DAILY
        accepted = await http.post(f"{grants.url}/agreements/{app}/acceptance", headers=visitor)
        assert accepted.status_code == 200, accepted.text
        prefinancing = planned * 70 // 100

        # The report says 8 working days of 10: the balance is reduced by rule; a redelivery changes nothing.
        report = upstream.report_accepted(app, call_id, actual=8)
        await publish(report, report)
        initiated = await topic.wait_for(lambda: topic.of_type(ActionInitiated, app), 60, "balance initiated")
        assert initiated[0].causationid == report.id and initiated[0].event().initiated_by == "pm"
        earned = GREEN_500_1999 + 8 * GROUP_3_DAILY
        assert initiated[0].event().amount_cents == earned - prefinancing
        verified = await http.post(f"{grants.url}/actions/{initiated[0].event().action_id}/verification",
                                   headers=officer)
        assert verified.status_code == 200, verified.text
        orders = await topic.wait_for(lambda: [e for e in topic.of_type(PaymentOrdered, app)
                                               if e.event().kind == "balance"], 60, "balance order")
        assert orders[0].event().amount_cents == earned - prefinancing
        assert topic.of_type(CommitmentReduced, app)[0].event().released_cents == planned - earned
        # initiating it again by hand is refused: the balance is ordered once
        by_hand = await http.post(f"{grants.url}/commitments/{app}/report-acceptance", headers=officer)
        assert by_hand.status_code == 409

        # The other visitor never came: its commitment is released once, however often it is said.
        no_show = Envelope.wrap(ExchangeNoShow(application_id=absent, call_id=call_id, reported_by="hans",
                                               reason="never came"), source=APPLICATIONS_SOURCE, subject=absent)
        await publish(no_show, no_show)
        released = await topic.wait_for(lambda: topic.of_type(CommitmentReleased, absent), 60, "release")
        assert released[0].event().released_cents == planned and "never came" in released[0].event().reason
        await publish(Envelope.wrap(ExchangeNoShow(application_id=absent, call_id=call_id, reported_by="hans"),
                                    source=APPLICATIONS_SOURCE, subject=absent),
                      upstream.report_accepted(app, call_id, 8))
        await drained(topic)
        assert len(topic.of_type(CommitmentReleased, absent)) == 1
        assert len([e for e in topic.of_type(PaymentOrdered, app) if e.event().kind == "balance"]) == 1
        assert len(topic.of_type(ActionInitiated, app)) == 1  # the later report initiates nothing: paid
    budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
    # the absent visitor's money is back; the reported exchange holds what it earned (ordered, not yet paid)
    assert budget["available_cents"] == BUDGET - earned
    assert (budget["committed_cents"], budget["paid_cents"]) == (earned, 0)
    recon = (await http.get(f"{grants.url}/calls/{call_id}/reconciliation", headers=officer)).json()
    assert recon["balanced"], recon["problems"]

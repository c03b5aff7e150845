"""Eligibility over the real broker and database: each rule failing alone with its reason
in the event, and a rule-set change over HTTP leaving earlier decisions untouched."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cx_shared.events.assessment import ApplicationApproved, ApplicationRejected, EligibilityChecked, RuleSetChanged
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import ASSESSMENT

pytestmark = pytest.mark.infra


def failed_rules(envelope) -> list[str]:
    return [o["rule"] for o in envelope.data["outcomes"] if not o["passed"]]


async def test_each_rule_fails_alone_and_rule_set_changes_keep_past_decisions(
        run_service, infra, namespace, publish, drained, client, token, upstream):
    service = run_service("assessment")
    pm = token("programme_manager", subject="paula", partnership_ids=("p-1",))
    submitted, participant = upstream.submitted, upstream.participant
    b0 = submitted("b0", "call-r", visitor=participant("v-0", "FR"), host=participant("h-0", "IT"))
    under_v1 = {
        "b-country": ("eligible_countries", submitted("b-country", "call-r", host=participant("h-us", "US"))),
        "b-national": ("transnational", submitted("b-national", "call-r", host=participant("h-fr", "FR"))),
        "b-sme": ("sme_cluster_membership",
                  submitted("b-sme", "call-r", visitor=participant("v-sme", "FR", "sme", None))),
        "b-short": ("duration", submitted("b-short", "call-r", working_days=2)),
        "b-late": ("dates_inside_call",
                   submitted("b-late", "call-r", submitted_at=datetime(2027, 1, 4, 9, tzinfo=UTC))),
        "b-overlap": ("no_overlapping_exchange",
                      submitted("b-overlap", "call-r", visitor=participant("v-0", "FR"), start=date(2026, 3, 4),
                                end=date(2026, 3, 10))),
    }
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        await publish(upstream.call_published("call-r", budget_cents=10_000_000), b0)
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "b0"), 60, "b0 approved")
        await publish(*(env for _, env in under_v1.values()))
        await watcher.wait_for(lambda: len(watcher.of_type(ApplicationRejected)) == len(under_v1), 60, "rejections")
        for app_id, (rule, _) in under_v1.items():
            (checked,) = watcher.of_type(EligibilityChecked, app_id)
            assert failed_rules(checked) == [rule], app_id
            (rejected,) = watcher.of_type(ApplicationRejected, app_id)
            reason = next(o["reason"] for o in checked.data["outcomes"] if o["rule"] == rule)
            assert rejected.data["reasons"] == [f"{rule}: {reason}"]

        # version 2: Italy leaves the call, SMEs are no longer eligible, offer-1 hosts one visitor
        call = (await client.get(f"{service.url}/calls/call-r", headers=pm)).json()
        rules = call["policies"][-1]["rules"]
        for r in rules:
            if r["rule"] == "eligible_countries":
                r["params"]["countries"] = [c for c in r["params"]["countries"] if c != "IT"]
            if r["rule"] == "organisation_types":
                r["params"]["types"] = ["cluster_organisation", "business_network_organisation"]
            if r["rule"] == "host_capacity":
                r["params"]["offer_capacities"] = {"offer-1": 1}
        url = f"{service.url}/calls/call-r/rule-set"
        as_assessor = token("assessor", subject="ann", partnership_ids=("p-1",))
        assert (await client.put(url, json={"rules": rules}, headers=as_assessor)).status_code == 403
        unknown = await client.put(url, json={"rules": [{"rule": "be_nice"}]}, headers=pm)
        assert unknown.status_code == 422 and "be_nice" in unknown.json()["detail"]
        changed = await client.put(url, json={"rules": rules}, headers=pm)
        assert changed.status_code == 200 and changed.json()["rule_set_version"] == "default-v1@2"
        await watcher.wait_for(lambda: watcher.of_type(RuleSetChanged, "call-r"), 60, "rule set changed")

        offer_1 = [submitted(f"b-offer{i}", "call-r", visitor=participant(f"v-offer{i}", "FR")) for i in (1, 2)]
        offer_1 = [e.model_copy(update={"data": {**e.data, "offer_id": "offer-1"}}) for e in offer_1]
        await publish(offer_1[0])
        await watcher.wait_for(lambda: watcher.of_type(ApplicationApproved, "b-offer1"), 60, "offer1 approved")
        under_v2 = {
            "b-italy": ("eligible_countries", submitted("b-italy", "call-r", host=participant("h-it", "IT"))),
            "b-type": ("organisation_types",
                       submitted("b-type", "call-r", visitor=participant("v-t", "FR", "sme", "Pôle Mer"))),
            "b-offer2": ("host_capacity", offer_1[1]),
        }
        await publish(*(env for _, env in under_v2.values()))
        await watcher.wait_for(lambda: all(watcher.of_type(ApplicationRejected, a) for a in under_v2), 60, "v2")
        for app_id, (rule, _) in under_v2.items():
            (checked,) = watcher.of_type(EligibilityChecked, app_id)
            assert failed_rules(checked) == [rule], app_id
            assert checked.data["rule_set_version"] == "default-v1@2"

        # b0 (Italy, under version 1) is untouched, and its redelivery changes nothing
        await publish(b0)
        await drained(watcher)
        about_b0 = [e.type for e in watcher.envelopes() if e.subject == "b0"]
        assert about_b0 == [EligibilityChecked.ce_type(), ApplicationApproved.ce_type()]
        first = (await client.get(f"{service.url}/applications/b0", headers=pm)).json()
        assert (first["status"], first["rule_set_version"], first["eligible"]) == ("approved", "default-v1@1", True)

        # the visitor of b0 applies in another call for overlapping days: refused there too
        await publish(upstream.call_published("call-r2", budget_cents=10_000_000))
        await drained(watcher)
        await publish(submitted("c-overlap", "call-r2", visitor=participant("v-0", "FR"), start=date(2026, 3, 6),
                                end=date(2026, 3, 12)))
        (checked,) = await watcher.wait_for(lambda: watcher.of_type(EligibilityChecked, "c-overlap"), 60, "c")
        assert failed_rules(checked) == ["no_overlapping_exchange"]
        assert "b0" in next(o["reason"] for o in checked.data["outcomes"] if not o["passed"])

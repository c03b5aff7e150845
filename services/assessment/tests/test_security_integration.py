"""Issue 12 over the real service, broker and database: conflicts of interest known from the
organisations' owners, bounded input that changes nothing, and odd ids that are 404 or 422."""

from __future__ import annotations

import pytest

from cx_shared.events.assessment import ApplicationQueued, ApplicationScored
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import ASSESSMENT
from cx_shared.lump_sums import exchange_lump_sum

from assessment.domain import DEFAULT_CRITERIA

pytestmark = pytest.mark.infra
FIVE_DAYS = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents
SHEET = {"scores": {c: 8 for c in DEFAULT_CRITERIA}, "comment": "sound plan"}
# NUL (which the database cannot store), non-ASCII, both, an emoji, and one character too many
ODD_IDS = ("%00", "%C3%A9t%C3%A9", "%C3%A9%00", "%F0%9F%98%80", "a" * 101)


async def test_an_owner_of_the_visitor_or_the_host_may_not_claim_score_or_override(
        run_service, infra, namespace, publish, drained, client, token, upstream):
    url = run_service("assessment").url

    def staff(subject: str, role: str = "assessor") -> dict:  # no `org` claim: only the enrolments tell
        return token(role, subject=subject, partnership_ids=("p-1",))

    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        await publish(upstream.call_published("call-c", budget_cents=10 * FIVE_DAYS, mode="panel"),
                      upstream.organisation("v-a1", owner="olaf"), upstream.organisation("h-a1", owner="hana"),
                      upstream.organisation("h-a2", owner="hugo"), upstream.organisation("v-a3", owner="pia"),
                      # a newer revision hands h-a1 over to "hans"; the older one, delivered late, changes nothing
                      upstream.organisation("h-a1", owner="hans", revision=2), upstream.organisation("h-a1", "hana"),
                      *(upstream.submitted(a, "call-c") for a in ("a1", "a2", "a3")))
        await watcher.wait_for(lambda: len(watcher.of_type(ApplicationQueued)) == 3, 60, "3 queued")
        await drained(watcher)  # the enrolments are read too

        for owner in ("olaf", "hans"):  # the visitor's owner, the host's current owner
            refused = await client.post(f"{url}/applications/a1/claim", headers=staff(owner))
            assert refused.status_code == 403, refused.text
            assert refused.json()["errors"][0]["rule"] == "conflict_of_interest"
            queue = (await client.get(f"{url}/queue", params={"partnership_id": "p-1"}, headers=staff(owner))).json()
            assert "a1" not in {item["application_id"] for item in queue} and len(queue) == 2
        assert (await client.post(f"{url}/applications/a1/claim", headers=staff("hana"))).status_code == 200
        # A party reads its application as the applicant does: not who assesses it.
        as_owner = (await client.get(f"{url}/applications/a1", headers=staff("olaf"))).json()
        assert as_owner["status"] == "queued" and "claims" not in as_owner and "assessments" not in as_owner
        assert (await client.get(f"{url}/applications/a1", headers=staff("ann"))).json()["claims"] == ["hana"]

        # Olaf claims a2, then its host is handed over to him: his score is refused.
        assert (await client.post(f"{url}/applications/a2/claim", headers=staff("olaf"))).status_code == 200
        await publish(upstream.organisation("h-a2", owner="olaf", revision=2))
        await drained(watcher)
        refused = await client.post(f"{url}/applications/a2/scores", json=SHEET, headers=staff("olaf"))
        assert refused.status_code == 403 and refused.json()["errors"][0]["rule"] == "conflict_of_interest"

        # A manager who owns the visitor may not override its decision.
        overridden = await client.post(f"{url}/applications/a3/override", headers=staff("pia", "programme_manager"),
                                       json={"decision": "approved", "justification": "strategic"})
        assert overridden.status_code == 403 and "conflict of interest" in overridden.json()["detail"]
        await drained(watcher)
        assert watcher.of_type(ApplicationScored) == []
    entries = (await client.get(f"{url}/calls/call-c", headers=staff("paul", "programme_manager"))).json()["entries"]
    assert {e["application_id"]: (e["status"], e["assessments"]) for e in entries} == {
        "a1": ("queued", []), "a2": ("queued", []), "a3": ("queued", [])}
    as_owner = (await client.get(f"{url}/calls/call-c", headers=staff("pia", "programme_manager"))).json()["entries"]
    assert {e["application_id"]: "claims" in e for e in as_owner} == {"a1": True, "a2": True, "a3": False}


async def test_oversized_or_unstorable_input_is_refused_and_changes_nothing(
        run_service, infra, namespace, publish, drained, client, token, upstream):
    url = run_service("assessment").url
    assessor = token("assessor", subject="ann", partnership_ids=("p-1",))
    manager = token("programme_manager", subject="paula", partnership_ids=("p-1",))
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        await publish(upstream.call_published("call-b", budget_cents=10 * FIVE_DAYS, mode="panel"),
                      upstream.submitted("a1", "call-b"))
        await watcher.wait_for(lambda: watcher.of_type(ApplicationQueued, "a1"), 60, "queued")
    assert (await client.post(f"{url}/applications/a1/claim", headers=assessor)).status_code == 200

    refusals = [
        ("post", "/applications/a1/conflicts", {"reason": "x" * 2001}, "reason", "string_too_long"),
        ("post", "/applications/a1/scores", {**SHEET, "comment": "a\x00b"}, "comment", "string_pattern_mismatch"),
        ("post", "/applications/a1/scores", {"scores": {f"c{i}": 5 for i in range(21)}}, "scores", "too_long"),
        ("post", "/applications/a1/scores", {"scores": {"a.b": 5}}, "scores.a.b.[key]", "string_pattern_mismatch"),
        ("put", "/calls/call-b/rule-set", {"rules": [{"rule": "duration"}] * 33}, "rules", "too_long"),
        ("put", "/calls/call-b/rule-set", {"rules": [{"rule": "host_capacity", "params": {"offer.x": 1}}]},
         "rules.0.params", "value_error"),
        ("put", "/calls/call-b/rule-set", {"rules": [{"rule": "host_capacity", "params": {"c": "x" * 10_001}}]},
         "rules.0.params", "value_error"),
        ("put", "/calls/call-b/rule-set", {"criteria": {"impact": 10**20}}, "criteria.impact", "less_than_equal"),
        ("put", "/calls/call-b/rule-set", {"rules": [{"rule": "duration", "params": {"min_working_days": "three"}}]},
         "rules.0.params.min_working_days", "rule_parameter"),  # would stall every later admission
    ]
    for method, path, body, field, rule in refusals:
        headers = manager if path.startswith("/calls") else assessor
        refused = await client.request(method.upper(), url + path, json=body, headers=headers)
        assert refused.status_code == 422, (path, refused.text)
        assert (field, rule) in [(e["field"], e["rule"]) for e in refused.json()["errors"]], refused.json()
    call = (await client.get(f"{url}/calls/call-b", headers=manager)).json()
    assert call["rule_set_version"] == "default-v1@1"
    (entry,) = call["entries"]
    assert (entry["claims"], entry["assessments"], entry["conflicts"]) == (["ann"], [], [])


async def test_every_path_id_is_declared_and_an_odd_one_is_404_or_422(run_service, client, token):
    url = run_service("assessment").url
    everyone = token("visitor", "host", "assessor", "programme_manager", subject="all", organisation_id="org-v",
                     programme=True)
    spec = (await client.get(f"{url}/openapi.json")).json()
    routes = [(method, path) for path, methods in spec["paths"].items() if "{" in path for method in methods]
    assert len(routes) >= 10
    body = {"reason": "why", "accept": False, "decision": "rejected", "justification": "why", "scores": {}}
    for method, path in routes:
        for param in spec["paths"][path][method]["parameters"]:
            if param["in"] == "path":
                assert {"pattern", "maxLength"} <= set(param["schema"]), (path, param)
        for odd in ODD_IDS:
            target = url + path.replace("{application_id}", odd).replace("{call_id}", odd)
            answer = await client.request(method.upper(), target, json=body if method != "get" else None,
                                          headers=everyone)
            assert answer.status_code in (404, 422), (method, target, answer.status_code, answer.text)
    # a programme-wide manager who also assesses reaches the database with the query's partnership
    assert (await client.get(f"{url}/queue", params={"partnership_id": "p\x00"}, headers=everyone)).status_code == 422

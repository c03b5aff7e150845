"""Issue 23, finding 4, over the real service: roles are held per partnership. An assessor of
one partnership who is a grant officer (or a manager) of another holds each role only where
it was given: he may not claim, score, read the assessors' file or run a round in the other."""

from __future__ import annotations

import pytest

from cx_shared.events.assessment import ApplicationQueued
from cx_shared.lump_sums import exchange_lump_sum
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import ASSESSMENT

from assessment.domain import DEFAULT_CRITERIA

pytestmark = pytest.mark.infra
FIVE_DAYS = exchange_lump_sum("default-v1", ("Paris", "FR"), ("Berlin", "DE"), 5, "standard").total_cents
SHEET = {"scores": {c: 8 for c in DEFAULT_CRITERIA}, "comment": "sound plan"}
HERE, ELSEWHERE = "p-1", "p-0"  # the calls of these tests are in p-1


async def test_a_role_held_in_another_partnership_gives_no_right_here(
        run_service, infra, namespace, publish, drained, client, token, upstream):
    url = run_service("assessment").url
    # an assessor elsewhere who is a grant officer here, and one who is a manager elsewhere and assesses here
    officer_here = token("assessor", "grant_officer", subject="oscar",
                         partnership_roles={ELSEWHERE: ["assessor"], HERE: ["grant_officer"]})
    assessor_here = token("assessor", "programme_manager", subject="ada",
                          partnership_roles={HERE: ["assessor"], ELSEWHERE: ["programme_manager"]})
    async with TopicWatcher(infra.kafka, topic_names(namespace, ASSESSMENT)) as watcher:
        await publish(upstream.call_published("call-r", budget_cents=10 * FIVE_DAYS, mode="panel"),
                      *(upstream.submitted(a, "call-r") for a in ("r1", "r2")))
        await watcher.wait_for(lambda: len(watcher.of_type(ApplicationQueued)) == 2, 60, "2 queued")
        await drained(watcher)

    # The assessor of elsewhere may not assess here, though he is staff here (as a grant officer).
    for method, path, body in (("POST", "/applications/r1/claim", None),
                               ("POST", "/applications/r1/scores", SHEET),
                               ("POST", "/applications/r1/conflicts", {"reason": "my cousin"}),
                               ("GET", "/applications/r1", None), ("GET", "/calls/call-r", None),
                               ("GET", f"/queue?partnership_id={HERE}", None)):
        refused = await client.request(method, url + path, json=body, headers=officer_here)
        assert refused.status_code == 403, (path, refused.text)
    assert (await client.get(f"{url}/queue", headers=officer_here)).json() == []  # only elsewhere's queue

    # The manager of elsewhere may not act as a manager here, where he assesses.
    for path, body in (("/calls/call-r/rounds", None), ("/applications/r2/override",
                                                         {"decision": "approved", "justification": "strategic"})):
        refused = await client.post(url + path, json=body, headers=assessor_here)
        assert refused.status_code == 403, (path, refused.text)
    assert (await client.put(f"{url}/calls/call-r/rule-set", json={"threshold": 1},
                             headers=assessor_here)).status_code == 403
    # ... and assesses here as before.
    assert {item["application_id"] for item in (await client.get(f"{url}/queue", headers=assessor_here)).json()} == {
        "r1", "r2"}
    assert (await client.post(f"{url}/applications/r1/claim", headers=assessor_here)).status_code == 200
    scored = await client.post(f"{url}/applications/r1/scores", json=SHEET, headers=assessor_here)
    assert scored.status_code == 200, scored.text
    file = (await client.get(f"{url}/applications/r1", headers=assessor_here)).json()
    assert [a["assessor"] for a in file["assessments"]] == ["ada"], file

"""Issue 12 over the real service, broker and database: money moves only after assessment's
approval, budgets open only for known calls of one's own partnership, bounded input, and odd
ids that are 404 or 422, never 500."""

from __future__ import annotations

import pytest

from cx_shared.events.grants import BudgetOpened, GrantCommitted, GrantRefused
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra

LUMP_SUM = 32_000 + 10 * 14_000  # Brussels -> Vilnius, green, 10 working days (see the domain tests)
BUDGET = 10 * LUMP_SUM
# NUL (which the database cannot store), non-ASCII, both, an emoji, and one character too many
ODD_IDS = ("%00", "%C3%A9t%C3%A9", "%C3%A9%00", "%F0%9F%98%80", "a" * 101)


async def test_a_host_acceptance_alone_commits_nothing_and_the_approval_after_it_commits_once(
        run_service, infra, namespace, publish, upstream, drained, http, token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    call_id, app = upstream.new_id("call"), upstream.new_id("app")
    accepted = upstream.host_accepted(app, call_id)
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(call_id, BUDGET), upstream.application_submitted(app, call_id), accepted)
        await drained(grants_topic)
        assert grants_topic.of_type(GrantCommitted, app) == [] and grants_topic.of_type(GrantRefused, app) == []
        assert (await http.get(f"{grants.url}/commitments/{app}", headers=officer)).status_code == 404

        # The approval arrives after the acceptance (and twice, plus a second approval): one commitment.
        approval = upstream.application_approved(app, call_id)
        await publish(approval, approval, upstream.application_approved(app, call_id))
        committed = await grants_topic.wait_for(lambda: grants_topic.of_type(GrantCommitted, app), 60, "commitment")
        await drained(grants_topic)
        assert len({e.id for e in grants_topic.of_type(GrantCommitted, app)}) == 1
        assert committed[0].causationid == accepted.id  # the acceptance that waited is the cause
    budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
    assert (budget["committed_cents"], budget["available_cents"]) == (LUMP_SUM, BUDGET - LUMP_SUM)


async def test_an_approval_of_another_call_commits_nothing(run_service, infra, namespace, publish, upstream, drained):
    run_service("grants")
    call_id, other_call, app = upstream.new_id("call"), upstream.new_id("call"), upstream.new_id("app")
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(call_id, BUDGET), upstream.application_submitted(app, call_id),
                      upstream.application_approved(app, other_call), upstream.host_accepted(app, call_id))
        await drained(grants_topic)
        assert grants_topic.of_type(GrantCommitted, app) == [] and grants_topic.of_type(GrantRefused, app) == []


async def test_a_budget_opens_only_for_a_known_call_by_its_partnership(run_service, infra, namespace, publish,
                                                                      upstream, http, token, grants_db):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    squatter = token("grant_officer", subject="sam", partnership_ids=("p-2",))
    scoped_manager = token("programme_manager", subject="mia", partnership_ids=("p-2",))
    visitor = token("visitor", subject="vic", organisation_id="org-v")
    published, unknown = upstream.new_id("call"), upstream.new_id("call")

    def opening(call_id: str, partnership_id: str = "p-1") -> dict:
        return {"call_id": call_id, "partnership_id": partnership_id, "budget_cents": 5 * LUMP_SUM}

    # A call grants has never seen: nobody may open (squat) its budget, whatever partnership he names.
    for headers, body in ((officer, opening(unknown)), (squatter, opening(unknown, "p-2"))):
        refused = await http.post(f"{grants.url}/budgets", json=body, headers=headers)
        assert refused.status_code == 404 and "not known" in refused.json()["detail"]
    assert (await http.get(f"{grants.url}/calls/{unknown}/budget", headers=officer)).status_code == 404

    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(published, BUDGET))
        await grants_topic.wait_for(lambda: grants_topic.of_type(BudgetOpened, published), 30, "budget opened")
    for headers in (squatter, scoped_manager):  # another partnership's staff, naming theirs or the call's
        for partnership in ("p-2", "p-1"):
            refused = await http.post(f"{grants.url}/budgets", json=opening(published, partnership), headers=headers)
            assert refused.status_code == 403 and "in partnership p-1" in refused.json()["detail"]
    assert (await http.post(f"{grants.url}/budgets", json=opening(published), headers=visitor)).status_code == 403
    wrong = await http.post(f"{grants.url}/budgets", json=opening(published, "p-2"), headers=officer)
    assert wrong.status_code == 409 and wrong.json()["errors"][0]["field"] == "partnership_id"
    assert (await http.post(f"{grants.url}/budgets", json=opening(published), headers=officer)).status_code == 409
    budget = (await http.get(f"{grants.url}/calls/{published}/budget", headers=officer)).json()
    assert (budget["partnership_id"], budget["budget_cents"]) == ("p-1", BUDGET)

    # A call seen whose budget was not opened yet (its handler stopped in between): its officers open it.
    pending = upstream.new_id("call")
    await grants_db["calls"].insert_one({"_id": pending, "partnership_id": "p-1", "title": "seen"})
    assert (await http.post(f"{grants.url}/budgets", json=opening(pending), headers=squatter)).status_code == 403
    created = await http.post(f"{grants.url}/budgets", json=opening(pending), headers=officer)
    assert created.status_code == 201 and created.json()["available_cents"] == 5 * LUMP_SUM


async def test_oversized_or_unstorable_input_is_refused_and_changes_nothing(run_service, infra, namespace, publish,
                                                                          upstream, http, token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    call_id = upstream.new_id("call")
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        await publish(upstream.call_published(call_id, BUDGET))
        await grants_topic.wait_for(lambda: grants_topic.of_type(BudgetOpened, call_id), 30, "budget opened")
    top_ups = f"{grants.url}/calls/{call_id}/budget/top-ups"
    for body, field, rule in (({"amount_cents": 100, "reason": "x" * 1001}, "reason", "string_too_long"),
                              ({"amount_cents": 100, "reason": "a\x00b"}, "reason", "string_pattern_mismatch"),
                              ({"amount_cents": 10**19, "reason": "a lot"}, "amount_cents", "less_than_equal")):
        refused = await http.post(top_ups, json=body, headers=officer)
        assert refused.status_code == 422, refused.text
        assert (field, rule) in [(e["field"], e["rule"]) for e in refused.json()["errors"]]
    long_title = {"call_id": call_id, "partnership_id": "p-1", "budget_cents": 1, "title": "t" * 201}
    assert (await http.post(f"{grants.url}/budgets", json=long_title, headers=officer)).status_code == 422
    quote = {"from_city": "Brussels", "from_country": "BE", "to_city": "Vilnius", "to_country": "LT",
             "working_days": 10**6}
    assert (await http.get(f"{grants.url}/lump-sums/quote", params=quote, headers=officer)).status_code == 422
    budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
    assert budget["budget_cents"] == BUDGET
    assert [e["kind"] for e in (await http.get(f"{grants.url}/calls/{call_id}/ledger", headers=officer)).json()] == [
        "budget_opened"]


async def test_every_path_id_is_declared_and_an_odd_one_is_404_or_422(run_service, http, token):
    grants = run_service("grants")
    everyone = token("visitor", "grant_officer", "programme_manager", "assessor", subject="all",
                     organisation_id="org-v", programme=True)
    spec = (await http.get(f"{grants.url}/openapi.json")).json()
    routes = [(method, path) for path, methods in spec["paths"].items() if "{" in path for method in methods]
    assert {("get", "/commitments/{application_id}"), ("get", "/exchanges/{application_id}/payments"),
            ("post", "/agreements/{application_id}/acceptance")} <= set(routes)
    for method, path in routes:
        for param in spec["paths"][path][method]["parameters"]:
            if param["in"] == "path":
                assert {"pattern", "maxLength"} <= set(param["schema"]), (path, param)
        body = {"reason": "why", "actual_working_days": 1, "amount_cents": 1}  # fits every body of these routes
        for odd in ODD_IDS:
            url = grants.url + path.replace("{application_id}", odd).replace("{call_id}", odd)
            answer = await http.request(method.upper(), url, json=body if method == "post" else None, headers=everyone)
            assert answer.status_code in (404, 422), (method, url, answer.status_code, answer.text)

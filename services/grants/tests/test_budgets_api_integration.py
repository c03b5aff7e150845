"""The budgets API over the real service: create, top up (idempotently), cancel commitments by
API and by event, quotes with an unknown city, authorisation, reconciliation."""

from __future__ import annotations

import pytest

from cx_shared.events.grants import BudgetOpened, BudgetToppedUp, CommitmentReleased, GrantCommitted
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra

LUMP_SUM = 32_000 + 10 * 14_000  # Brussels -> Vilnius, green, 10 working days


async def test_budgets_are_managed_by_their_partnerships_officers(run_service, infra, namespace, publish, upstream,
                                                                 drained, http, token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    outsider = token("grant_officer", subject="otto", partnership_ids=("p-2",))
    call_id, by_api, by_event = upstream.new_id("call"), upstream.new_id("app"), upstream.new_id("app")
    budget = {"call_id": call_id, "partnership_id": "p-1", "budget_cents": LUMP_SUM, "title": "pilot"}

    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as grants_topic:
        # call.published opens the call's budget; nobody opens a second one by hand.
        await publish(upstream.call_published(call_id, LUMP_SUM))
        await grants_topic.wait_for(lambda: grants_topic.of_type(BudgetOpened, call_id), 30, "budget opened")
        assert (await http.post(f"{grants.url}/budgets", json=budget, headers=outsider)).status_code == 403
        assert (await http.post(f"{grants.url}/budgets", json={**budget, "budget_cents": -1},
                                headers=officer)).status_code == 422
        assert (await http.post(f"{grants.url}/budgets", json=budget, headers=officer)).status_code == 409

        # Top up with an idempotency key: the retry adds nothing.
        top_up = {"amount_cents": LUMP_SUM, "reason": "second tranche"}
        key = {"Idempotency-Key": upstream.new_id("key")}
        for _ in range(2):
            topped = await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", json=top_up,
                                     headers={**officer, **key})
            assert topped.status_code == 200 and topped.json()["budget_cents"] == 2 * LUMP_SUM
        assert (await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", json=top_up,
                                headers=outsider)).status_code == 403

        for app in (by_api, by_event):
            await publish(upstream.application_submitted(app, call_id), *upstream.approved_and_accepted(app, call_id))
        await grants_topic.wait_for(lambda: {e.subject for e in grants_topic.of_type(GrantCommitted)}
                                    >= {by_api, by_event}, 60, "two commitments")
        listed = (await http.get(f"{grants.url}/calls/{call_id}/commitments", headers=officer)).json()
        assert sorted(c["application_id"] for c in listed) == sorted([by_api, by_event])

        cancel = await http.post(f"{grants.url}/commitments/{by_api}/cancellation", json={"reason": "visa refused"},
                                 headers=officer)
        assert cancel.status_code == 200 and cancel.json()["state"] == "released"
        assert (await http.post(f"{grants.url}/commitments/{by_api}/cancellation", json={"reason": "again"},
                                headers=officer)).status_code == 409
        await publish(upstream.application_cancelled(by_event, call_id))
        await grants_topic.wait_for(lambda: grants_topic.of_type(CommitmentReleased, by_event), 30, "release")
        await drained(grants_topic)

        released = {e.subject: e.event() for e in grants_topic.of_type(CommitmentReleased)}
        assert released[by_api].released_cents == LUMP_SUM and "visa refused" in released[by_api].reason
        assert released[by_event].released_cents == LUMP_SUM and "cancelled" in released[by_event].reason
        assert len({e.id for e in grants_topic.of_type(BudgetToppedUp)}) == 1

    balances = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
    assert (balances["budget_cents"], balances["available_cents"], balances["committed_cents"]) == (
        2 * LUMP_SUM, 2 * LUMP_SUM, 0)
    recon = (await http.get(f"{grants.url}/calls/{call_id}/reconciliation", headers=officer)).json()
    assert recon["balanced"] and recon["entries"] == 6, recon  # open, top-up, 2 commitments, 2 releases
    assert (await http.get(f"{grants.url}/calls/{call_id}/ledger", headers=outsider)).status_code == 403
    listed = (await http.get(f"{grants.url}/budgets", headers=officer)).json()
    assert [b["call_id"] for b in listed] == [call_id]


async def test_a_quote_names_an_unknown_city(run_service, http, token):
    grants = run_service("grants")
    visitor = token("visitor", subject="alice", organisation_id="org-v")
    params = {"from_city": "Brussels", "from_country": "BE", "to_city": "Vilnius", "to_country": "LT",
              "working_days": 10, "travel_mode": "green"}
    quote = await http.get(f"{grants.url}/lump-sums/quote", params=params, headers=visitor)
    assert quote.status_code == 200 and quote.json()["total_cents"] == LUMP_SUM
    unknown = await http.get(f"{grants.url}/lump-sums/quote", params={**params, "to_city": "Atlantis"},
                             headers=visitor)
    assert unknown.status_code == 422 and unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["errors"][0]["field"] == "to_city" and "Atlantis" in unknown.json()["detail"]
    assert (await http.get(f"{grants.url}/lump-sums/quote", params=params)).status_code == 401

"""The budgets API over the real service: create, top up (idempotently, four eyes), cancel
commitments by API (four eyes) and by event, quotes with an unknown city, authorisation (roles
held per partnership), reconciliation, the ledger by pages."""

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
    second = token("grant_officer", subject="oscar", partnership_ids=("p-1",))
    # Issue 23 (4): an assessor of p-1 who is a grant officer of p-2 is no grant officer in p-1.
    mixed = token("grant_officer", subject="mia", partnership_roles={"p-1": ["assessor"], "p-2": ["grant_officer"]})
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

        # Top up with an idempotency key: the retry initiates nothing more; a second officer
        # verifies it (issue 23: four eyes; it used to add the money at once, by one officer).
        top_up = {"amount_cents": LUMP_SUM, "reason": "second tranche"}
        key = {"Idempotency-Key": upstream.new_id("key")}
        initiated = [await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", json=top_up,
                                     headers={**officer, **key}) for _ in range(2)]
        assert [r.status_code for r in initiated] == [202, 202]
        assert initiated[0].json()["action_id"] == initiated[1].json()["action_id"]
        assert initiated[0].json()["status"] == "pending"
        budget_now = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
        assert budget_now["budget_cents"] == LUMP_SUM  # nothing added before the verification
        await verified_by_another(http, grants.url, initiated[0].json(), officer, second)
        budget_now = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
        assert budget_now["budget_cents"] == 2 * LUMP_SUM
        assert (await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", json=top_up,
                                headers=outsider)).status_code == 403
        assert (await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", json=top_up,
                                headers=mixed)).status_code == 403  # an officer of p-2 is none in p-1
        too_much = await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", headers=officer,
                                   json={"amount_cents": 10_000_001, "reason": "too much"})
        assert too_much.status_code == 422 and "amount_cents" in too_much.text

        for app in (by_api, by_event):
            await publish(upstream.application_submitted(app, call_id), *upstream.approved_and_accepted(app, call_id))
        await grants_topic.wait_for(lambda: {e.subject for e in grants_topic.of_type(GrantCommitted)}
                                    >= {by_api, by_event}, 60, "two commitments")
        listed = (await http.get(f"{grants.url}/calls/{call_id}/commitments", headers=officer)).json()
        assert sorted(c["application_id"] for c in listed) == sorted([by_api, by_event])

        cancel = await http.post(f"{grants.url}/commitments/{by_api}/cancellation", json={"reason": "visa refused"},
                                 headers=officer)
        assert cancel.status_code == 202 and cancel.json()["kind"] == "cancellation"
        assert (await http.post(f"{grants.url}/commitments/{by_api}/cancellation", json={"reason": "twice"},
                                headers=second)).status_code == 409  # one pending cancellation at a time
        await verified_by_another(http, grants.url, cancel.json(), officer, second)
        released_now = (await http.get(f"{grants.url}/commitments/{by_api}", headers=officer)).json()
        assert released_now["state"] == "released"
        assert (await http.post(f"{grants.url}/commitments/{by_api}/cancellation", json={"reason": "again"},
                                headers=officer)).status_code == 409
        pending = (await http.get(f"{grants.url}/calls/{call_id}/actions", headers=second)).json()
        assert {(a["kind"], a["status"], a["initiated_by"], a["verified_by"]) for a in pending} == {
            ("top_up", "verified", "olga", "oscar"), ("cancellation", "verified", "olga", "oscar")}
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
    assert (await http.get(f"{grants.url}/calls/{call_id}/ledger", headers=mixed)).status_code == 403
    assert (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=mixed)).status_code == 200  # assessor
    listed = (await http.get(f"{grants.url}/budgets", headers=officer)).json()
    assert [b["call_id"] for b in listed] == [call_id]
    assert (await http.get(f"{grants.url}/budgets", headers=mixed)).json() == []

    # Issue 23 (6): the ledger comes by pages of a bounded size; the pages make the whole ledger.
    first = await http.get(f"{grants.url}/calls/{call_id}/ledger", params={"limit": 4}, headers=officer)
    assert [e["seq"] for e in first.json()] == [1, 2, 3, 4] and 'rel="next"' in first.headers["link"]
    rest = await http.get(f"{grants.url}/calls/{call_id}/ledger", params={"after_seq": 4, "limit": 4},
                          headers=officer)
    assert [e["seq"] for e in rest.json()] == [5, 6] and "link" not in rest.headers
    assert (await http.get(f"{grants.url}/calls/{call_id}/ledger", params={"limit": 1001},
                           headers=officer)).status_code == 422


async def verified_by_another(http, url: str, action: dict, initiator: dict, verifier: dict) -> dict:
    """Four eyes: the initiator's verification is refused, another officer's takes effect, once."""
    verification = f"{url}/actions/{action['action_id']}/verification"
    refused = await http.post(verification, headers=initiator)
    assert refused.status_code == 403 and "initiator_cannot_verify" in refused.text
    done = await http.post(verification, headers=verifier)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    assert (await http.post(verification, headers=verifier)).status_code in (200, 409)  # a retry: nothing more
    return done.json()


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

"""Issue 13 (b): a refused grant is not a dead end. Assessment waitlists the application and,
once money is back, promotes it and emits the host's acceptance again; grants then decides
again and commits, instead of keeping the exchange host_confirmed for ever."""

from __future__ import annotations

import pytest

from cx_shared.events.grants import GrantCommitted, GrantRefused
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import GRANTS

pytestmark = pytest.mark.infra


async def test_b_a_refused_grant_is_decided_again_on_the_next_acceptance(run_service, infra, namespace, publish,
                                                                         upstream, drained, http, token):
    grants = run_service("grants")
    officer = token("grant_officer", subject="olga", partnership_ids=("p-1",))
    call_id, app = upstream.new_id("call"), upstream.new_id("app")
    first = upstream.host_accepted(app, call_id)
    async with TopicWatcher(infra.kafka, topic_names(namespace, GRANTS)) as topic:
        await publish(upstream.call_published(call_id, 100), upstream.application_submitted(app, call_id),
                      upstream.application_approved(app, call_id), first)
        refused = (await topic.wait_for(lambda: topic.of_type(GrantRefused, app), 60, "the refusal"))[0].event()
        response = await http.post(f"{grants.url}/calls/{call_id}/budget/top-ups", headers=officer,
                                   json={"amount_cents": refused.required_cents, "reason": "money is back"})
        assert response.status_code == 202, response.text  # four eyes (issue 23): a second officer verifies
        second_officer = token("grant_officer", subject="oscar", partnership_ids=("p-1",))
        verified = await http.post(f"{grants.url}/actions/{response.json()['action_id']}/verification",
                                   headers=second_officer)
        assert verified.status_code == 200, verified.text
        await publish(first)  # the first acceptance again (a redelivery): it stays refused
        await drained(topic)
        assert not topic.of_type(GrantCommitted, app) and len(topic.of_type(GrantRefused, app)) == 1
        second = upstream.host_accepted(app, call_id)  # assessment promoted it: the host's acceptance again
        await publish(second, second)
        committed = await topic.wait_for(lambda: topic.of_type(GrantCommitted, app), 60, "the commitment")
        await drained(topic)
    assert len(topic.of_type(GrantCommitted, app)) == 1 and committed[0].causationid == second.id
    assert committed[0].event().total_cents == refused.required_cents
    budget = (await http.get(f"{grants.url}/calls/{call_id}/budget", headers=officer)).json()
    assert (budget["available_cents"], budget["committed_cents"]) == (100, refused.required_cents)

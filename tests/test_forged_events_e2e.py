"""Forged events move no money (issue 12): a host's acceptance that assessment never published,
written by the finance system on its own topic, by the admin with a source that is not
assessment's, or by the finance system on assessment's topic, commits no grant. The running
services refuse the first two as `forged`; the broker refuses the third."""

from __future__ import annotations

import httpx
import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from cx_shared.envelope import Envelope
from cx_shared.events.assessment import HostAccepted
from cx_shared.events.grants import GrantCommitted
from cx_shared.testing.kafka import TopicWatcher, publish_raw, topic_names
from cx_shared.topics import ASSESSMENT, DEAD_LETTERS, FINANCE, FINANCE_SOURCE, GRANTS, consumer_group, qualified
from tests.journey import Journey

pytestmark = pytest.mark.infra


async def test_a_forged_host_acceptance_commits_no_grant(run_service, infra, namespace, token):
    system = {name: run_service(name) for name in ("applications", "assessment", "grants")}
    journey = Journey(system["applications"].url, token)
    journey.open_call(budget_cents=1_000_000)
    journey.enrol_pair(confirm=False)  # no notifications here
    app_id = journey.submit()["application_id"]
    await journey.wait_status(app_id, "approved")
    accepted = HostAccepted(application_id=app_id, call_id=journey.call["call_id"],
                            host_id=journey.host["organisation_id"])
    finance = infra.kafka_as("finance")
    on_finance = Envelope.wrap(accepted, source=FINANCE_SOURCE, subject=app_id)
    wrong_source = Envelope.wrap(accepted, source=FINANCE_SOURCE, subject=app_id)
    grants_group = consumer_group("grants", namespace).encode()

    async with TopicWatcher(infra.kafka, topic_names(namespace, DEAD_LETTERS, GRANTS)) as watch:
        await publish_raw(finance, qualified(FINANCE, namespace), on_finance.kafka_value(), key=app_id.encode(),
                          headers=on_finance.kafka_headers())
        await publish_raw(infra.kafka, qualified(ASSESSMENT, namespace), wrong_source.kafka_value(),
                          key=app_id.encode(), headers=wrong_source.kafka_headers())
        with pytest.raises(TopicAuthorizationFailedError):
            await publish_raw(finance, qualified(ASSESSMENT, namespace), on_finance.kafka_value(),
                              key=app_id.encode(), headers=on_finance.kafka_headers())

        def refused_by_grants() -> dict[bytes, bytes]:
            return {h["ce_id"]: h["dlq_reason"] for h in (dict(r.headers) for r in watch.records
                    if r.topic == qualified(DEAD_LETTERS, namespace)) if h["dlq_consumer_group"] == grants_group}

        await watch.wait_for(lambda: len(refused_by_grants()) == 2, what="grants' two dead letters")
        assert refused_by_grants() == {on_finance.id.encode(): b"forged", wrong_source.id.encode(): b"forged"}
        budget_url = f"{system['grants'].url}/calls/{journey.call['call_id']}/budget"
        assert httpx.get(budget_url, headers=journey.manager, timeout=10).json()["committed_cents"] == 0
        assert journey.status(app_id)["status"] == "approved"

        # The host's real acceptance, through assessment, still commits the grant: nothing was held up.
        decision = httpx.post(f"{system['assessment'].url}/applications/{app_id}/host-decision",
                              json={"accept": True}, headers=journey.host_headers, timeout=20)
        assert decision.status_code in (200, 201, 202), decision.text
        await journey.wait_status(app_id, "grant_committed")
        committed = await watch.wait_for(lambda: watch.of_type(GrantCommitted, app_id), what="the grant")
        assert len(committed) == 1
        assert httpx.get(budget_url, headers=journey.manager, timeout=10).json()["committed_cents"] == \
            committed[0].event().total_cents

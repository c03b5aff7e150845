"""Every filter the four services send on an exchange's hot path is served by an index.

The services append the shape of each filter they send (with a first example) to
QUERY_AUDIT_FILE while an exchange runs from enrolment to a committed grant and its emails;
the database then explains each example on an empty copy of its collection with the same
indexes. A query the planner would answer with a collection scan (its cost growing with the
data stored) fails this test by name, with its plan.
"""

from __future__ import annotations

import json

import pytest
from cx_shared.query_audit import scans
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS
from tests.journey import Journey, wait_mail_settled
from tests.test_lifecycle_e2e import SERVICES, run_to_committed_grant

pytestmark = pytest.mark.infra


async def test_hot_path_queries_are_served_by_indexes(run_service, infra, namespace, token, tmp_path):
    audit = tmp_path / "queries.jsonl"
    system = {name: run_service(name, QUERY_AUDIT_FILE=str(audit)) for name in SERVICES}
    journey = Journey(system["applications"].url, token)
    async with TopicWatcher(infra.kafka, topic_names(namespace, APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS)):
        app_id = await run_to_committed_grant(journey, system)
        await wait_mail_settled(system["notifications"].url, app_id, journey.manager)
    lines = audit.read_text().splitlines()
    audited = [json.loads(line) for line in lines]
    assert {e["service"] for e in audited} == set(SERVICES), "every service audited its queries"
    scanned = await scans(infra.mongodb_url, lines)
    assert not scanned, "queries answered by a collection scan:\n" + "\n".join(map(str, scanned))

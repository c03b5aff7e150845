"""Every filter the four services send on an exchange's hot path is served by an index.

The services append the shape of each filter they send to QUERY_AUDIT_FILE while an
exchange runs from enrolment to a committed grant and its emails; every shape must compare
`_id` or the first field of one of the collection's indexes for equality. A query that
would scan a collection (its cost growing with the data stored) fails this test by name.
"""

from __future__ import annotations

import json

import pytest
from pymongo import AsyncMongoClient

from cx_shared.query_audit import unserved
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS
from tests.journey import Journey, wait_mail_settled
from tests.test_lifecycle_e2e import SERVICES, run_to_committed_grant

pytestmark = pytest.mark.infra


async def leading_fields(mongodb_url: str, audited: list[dict]) -> dict[tuple[str, str], set[str]]:
    client = AsyncMongoClient(mongodb_url)
    try:
        result = {}
        for database, collection in {(e["database"], e["collection"]) for e in audited}:
            indexes = [ix async for ix in await client[database][collection].list_indexes()]
            result[(database, collection)] = {next(iter(ix["key"])) for ix in indexes}
        return result
    finally:
        await client.close()


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
    scans = unserved(lines, await leading_fields(infra.mongodb_url, audited))
    assert not scans, "queries no index serves:\n" + "\n".join(map(str, scans))

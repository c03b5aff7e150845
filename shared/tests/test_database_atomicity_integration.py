"""The guarantee every service builds on: one update of one document is atomic, even with
several clients racing (MongoDB's rule; in local mode FerretDB behind deploy/ferretdb's
write-serialising proxy, without which these updates lose each other's changes)."""

import asyncio

import pytest
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.infra


async def test_concurrent_updates_of_one_document_lose_nothing_and_never_overdraw(infra, mongo_db):
    clients = [AsyncMongoClient(infra.mongodb_url) for _ in range(4)]
    name = mongo_db.name
    await mongo_db.budget.insert_one({"_id": "call", "increments": 0, "available": 40, "commitments": []})

    async def increment(client):
        for _ in range(25):
            await client[name].budget.update_one({"_id": "call"}, {"$inc": {"increments": 1}})

    async def commit(client, who):
        for i in range(20):
            await client[name].budget.update_one(
                {"_id": "call", "available": {"$gte": 1}, "commitments": {"$ne": f"{who}-{i}"}},
                {"$inc": {"available": -1}, "$push": {"commitments": f"{who}-{i}"}})

    try:
        await asyncio.gather(*(increment(c) for c in clients), *(commit(c, n) for n, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.close()
    doc = await mongo_db.budget.find_one({"_id": "call"})
    assert doc["increments"] == 100
    assert doc["available"] == 0
    assert len(doc["commitments"]) == 40 == len(set(doc["commitments"]))

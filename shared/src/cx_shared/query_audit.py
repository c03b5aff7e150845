"""Which filters a service sends to its database, and whether the database scans to answer one.

With ``QUERY_AUDIT_FILE`` set, every service appends the shape of each filter it sends
(collection, command, the fields and whether each is compared for equality) to that file,
one JSON line each, with the first filter of that shape as an example. ``scans`` then asks
the database itself: it replays each example through ``explain`` on an empty collection with
the same indexes and names those the planner answers with a collection scan. An empty,
never-analysed table makes the planner's choice depend on the indexes and on what the filter
lets it use, not on how many documents a test happened to store.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bson import json_util
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

FILTERS = {"find": ("filter",), "count": ("query",), "findAndModify": ("query",),
           "update": ("updates", "q"), "delete": ("deletes", "q")}
SCAN_NODES = {"Seq Scan", "COLLSCAN"}  # PostgreSQL under FerretDB; MongoDB


def shape(filter_: Mapping[str, Any]) -> dict[str, str]:
    """Each top-level field with 'eq' (a plain value or $eq) or the operators used."""
    result = {}
    for field, value in filter_.items():
        if isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
            ops = sorted(value)
            result[field] = "eq" if ops == ["$eq"] else ",".join(ops)
        elif isinstance(value, (list, Mapping)):
            result[field] = "array-or-document"
        else:
            result[field] = "eq"
    return result


def filters_of(command_name: str, command: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    where = FILTERS.get(command_name)
    if where is None:
        return []
    if len(where) == 1:
        return [command.get(where[0]) or {}]
    return [item.get(where[1]) or {} for item in command.get(where[0]) or []]


class QueryAudit(CommandListener):
    def __init__(self, path: str, service: str):
        self.path, self.service = path, service
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def started(self, event) -> None:
        collection = event.command.get(event.command_name)
        for filter_ in filters_of(event.command_name, event.command):
            key = json.dumps({"service": self.service, "database": event.database_name, "collection": collection,
                              "command": event.command_name, "shape": shape(filter_)}, sort_keys=True)
            with self._lock:
                if key not in self._seen:
                    self._seen.add(key)
                    line = {**json.loads(key), "example": json_util.dumps(filter_)}
                    with open(self.path, "a", encoding="utf-8") as out:
                        out.write(json.dumps(line, sort_keys=True) + "\n")

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def plan_of(db: Any, collection: str, filter_: Mapping[str, Any]) -> dict:
    """The database's plan for a find with this filter (its queryPlanner section)."""
    explained = await db.command("explain", {"find": collection, "filter": filter_}, verbosity="queryPlanner")
    return explained["queryPlanner"]


def plan_nodes(plan: Any) -> Iterator[Mapping[str, Any]]:
    """Every node of an explained plan (PostgreSQL's nodes or MongoDB's stages), depth first."""
    if isinstance(plan, Mapping):
        yield plan
        for value in plan.values():
            yield from plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from plan_nodes(value)


def scanning(plan: Any) -> bool:
    """Whether an explained plan holds a collection scan."""
    return any(node.get("Node Type") in SCAN_NODES or node.get("stage") in SCAN_NODES for node in plan_nodes(plan))


async def scans(mongodb_url: str, lines: Iterable[str]) -> list[dict]:
    """The audited filters that the database answers with a collection scan, each explained on
    an empty copy (same indexes) of its collection in a scratch database."""
    client: AsyncMongoClient = AsyncMongoClient(mongodb_url)
    scratch = client[f"explain_{uuid.uuid4().hex[:12]}"]
    found, copied = [], set()
    try:
        for entry in map(json.loads, lines):
            name = f"{entry['database']}__{entry['collection']}"
            if name not in copied:
                copied.add(name)
                await scratch.create_collection(name)
                async for index in await client[entry["database"]][entry["collection"]].list_indexes():
                    if index["name"] != "_id_":
                        await scratch[name].create_index(list(index["key"].items()), unique=index.get("unique", False))
            plan = await plan_of(scratch, name, json_util.loads(entry["example"]))
            if scanning(plan):
                found.append({**entry, "plan": plan})
        return found
    finally:
        await client.drop_database(scratch.name)
        await client.close()

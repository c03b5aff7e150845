"""Which filters a service sends to its database, and whether an index serves each.

With ``QUERY_AUDIT_FILE`` set, every service appends the shape of each filter it sends
(collection, command, the fields and whether each is compared for equality) to that file,
one JSON line each. ``unserved`` then names the shapes that no index serves: a filter is
served when it compares ``_id`` or the first field of one of the collection's indexes for
equality with a plain value. That is what MongoDB needs to avoid a collection scan, and
what our FerretDB build pushes down to PostgreSQL's indexes (deploy/ferretdb).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.monitoring import CommandListener

FILTERS = {"find": ("filter",), "count": ("query",), "findAndModify": ("query",),
           "update": ("updates", "q"), "delete": ("deletes", "q")}


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
            line = json.dumps({"service": self.service, "database": event.database_name, "collection": collection,
                               "command": event.command_name, "shape": shape(filter_)}, sort_keys=True)
            with self._lock:
                if line not in self._seen:
                    self._seen.add(line)
                    with open(self.path, "a", encoding="utf-8") as out:
                        out.write(line + "\n")

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def served(query_shape: Mapping[str, str], leading_fields: Iterable[str]) -> bool:
    """Whether an equality on `_id` or on an index's first field narrows the filter."""
    return any(query_shape.get(field) == "eq" for field in {"_id", *leading_fields})


def unserved(lines: Iterable[str], leading_fields: Mapping[tuple[str, str], set[str]]) -> list[dict]:
    """The audited shapes that no index serves; ``leading_fields`` maps (database, collection)
    to the first fields of its indexes."""
    found = []
    for line in lines:
        entry = json.loads(line)
        if not served(entry["shape"], leading_fields.get((entry["database"], entry["collection"]), set())):
            found.append(entry)
    return found

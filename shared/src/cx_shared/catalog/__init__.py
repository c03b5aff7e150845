"""The event catalog (AsyncAPI 3.0) of the whole system and the committed schema of every event
version. `make catalog` (python -m cx_shared.catalog) writes them; every service serves the
catalog (`/asyncapi`, `/asyncapi.json`) from the copy packaged here, `asyncapi.json`."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from cx_shared.topics import qualified


@cache
def packaged() -> dict[str, Any]:
    """The catalog as `make catalog` last wrote it (a test fails when it is not today's)."""
    return json.loads(resources.files(__name__).joinpath("asyncapi.json").read_text(encoding="utf-8"))


def served(namespace: str = "") -> dict[str, Any]:
    """The catalog as a service running in ``namespace`` uses it: topic and group names carry it."""
    document = copy.deepcopy(packaged())
    if not namespace:
        return document
    for channel in document["channels"].values():
        channel["address"] = qualified(channel["address"], namespace)
        channel["bindings"]["kafka"]["topic"] = channel["address"]
    for operation in document["operations"].values():
        group = operation.get("bindings", {}).get("kafka", {}).get("groupId")
        if group:
            group["const"] = qualified(group["const"], namespace)
    return document

"""Holding what is on the topics against the event catalog: tests that watch real records ask
whether the catalog says them truly (topic, type, headers, value, key)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema_rs

from cx_shared import catalog
from cx_shared.catalog.document import key_field
from cx_shared.events import event_class


def off_catalog(records: list[Any], namespace: str = "") -> list[str]:
    """What in these Kafka records the catalog served in ``namespace`` does not describe."""
    document = catalog.served(namespace)
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    problems = []
    for record in records:
        where = f"{record.topic}@{record.offset}"
        channel = channels.get(record.topic)
        if channel is None:
            problems.append(f"{where}: no channel of the catalog has this address")
            continue
        problems += [f"{where}: {p}" for p in _message_problems(document, channel, record)]
    return problems


def _message_problems(document: dict[str, Any], channel: dict[str, Any], record: Any) -> list[str]:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or []}
    messages = [document["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]
                for ref in channel["messages"].values()]
    message = next((m for m in messages if m.get("x-ce-type", headers.get("ce_type")) == headers.get("ce_type")), None)
    if message is None:
        return [f"{headers.get('ce_type')} is no message of this channel"]
    problems = _errors("headers", message["headers"], headers)
    if "x-ce-type" not in message:
        return problems  # a dead letter: its value is whatever the original was
    payload = json.loads(record.value)  # as sent: no contract in between
    problems += _errors("value", message["payload"], payload)
    key = payload.get(key_field(event_class(message["x-ce-type"])))
    if key is not None and record.key != key.encode():
        problems.append(f"key {record.key!r}, but the catalog says {key!r}")
    return problems


def _errors(part: str, schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    return [f"{part} {'/'.join(map(str, e.instance_path))}: {e.message[:200]}"
            for e in _validator(json.dumps(schema, sort_keys=True)).iter_errors(instance)]


@cache
def _validator(schema: str):
    """A validator of one of the catalog's schemas, its shared schemas beside it to resolve against."""
    return jsonschema_rs.Draft202012Validator({**json.loads(schema), "components": catalog.packaged()["components"]})

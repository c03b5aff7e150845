"""Checked schema evolution: what an event version, once published, may no longer change.

Each version's JSON Schema is committed when it is first published (docs/schemas/). Its
consumers validate what they receive against the contract they were built with, and a
rebuild replays old events through today's contracts, so old and new events must both pass
old and new contracts: a version may gain optional fields and change its descriptions,
nothing else. Anything more is a new version beside it (README, Schema evolution).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

RULES = {
    "removed": "a removed or renamed field: consumers of this version still read it",
    "type": "a changed type: values valid on one side fail the other side's contract",
    "bound": "a changed bound: values valid on one side fail the other side's contract",
    "required": "a new required field: events already published do not carry it",
}
ADVICE = ("An existing event version cannot change this way: publish a new version beside it and "
          "migrate its consumers (README, Schema evolution).")
MAX_DEPTH = 16
BOUNDS = ("maxLength", "minLength", "pattern", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum",
          "multipleOf", "maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties")


@dataclass(frozen=True)
class Breach:
    event_type: str
    path: str  # the field, dotted; `[]` for a list's items, `{}` for a map's values
    rule: str  # a key of RULES
    detail: str

    def __str__(self) -> str:
        return f"{self.event_type}: {self.path}: {self.detail} ({RULES[self.rule]})"


@dataclass(frozen=True)
class Shape:
    kind: str
    required: bool
    bounds: tuple[tuple[str, Any], ...]


def breaches(event_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[Breach]:
    """Every backward-incompatible difference between a version's committed schema and its
    contract's schema today (both as pydantic's model_json_schema writes them)."""
    before, after = fields(old), fields(new)
    found = []
    for path, was in before.items():
        if not _parent_unchanged(path, before, after):
            continue  # reported on the parent
        now = after.get(path)
        if now is None:
            found.append(Breach(event_type, path, "removed", "removed"))
            continue
        if was.kind != now.kind:
            found.append(Breach(event_type, path, "type", f"type was {was.kind}, now {now.kind}"))
        elif was.bounds != now.bounds:
            found.append(Breach(event_type, path, "bound", f"bounds were {_show(was.bounds)}, now {_show(now.bounds)}"))
    for path, now in after.items():
        was = before.get(path)
        if now.required and not (was and was.required) and _parent_unchanged(path, before, after):
            found.append(Breach(event_type, path, "required", "required" if was else "added as required"))
    return found


def fields(schema: dict[str, Any]) -> dict[str, Shape]:
    """Every field of an event, nested ones included, by dotted path."""
    found: dict[str, Shape] = {}
    _walk(schema, schema.get("$defs", {}), "", found)
    return found


def _walk(node: dict[str, Any], defs: dict[str, Any], prefix: str, found: dict[str, Shape]) -> None:
    if prefix.count(".") > MAX_DEPTH:
        return  # a model that contains itself: its own fields were compared above
    node = resolve(node, defs)
    required = set(node.get("required", ()))
    for name, prop in node.get("properties", {}).items():
        path = prefix + name
        found[path] = Shape(_kind(prop, defs), name in required, tuple(sorted(_bounds(prop, defs).items())))
        for obj, suffix in _objects(prop, defs, ""):
            _walk(obj, defs, f"{path}{suffix}.", found)


def _objects(node: dict[str, Any], defs: dict[str, Any], suffix: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The objects with named fields a value may hold: itself, an option, a list's items, a map's values."""
    node = resolve(node, defs)
    if "properties" in node:
        yield node, suffix
    for option in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
        yield from _objects(option, defs, suffix)
    if isinstance(node.get("items"), dict):
        yield from _objects(node["items"], defs, suffix + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _objects(node["additionalProperties"], defs, suffix + "{}")


def _kind(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """What values a field takes, as a comparable text (its nested fields are compared apart)."""
    node = resolve(node, defs)
    options = node.get("anyOf", []) + node.get("oneOf", [])
    if options:
        return " | ".join(sorted({_kind(option, defs) for option in options}))
    if "const" in node:
        return f"const {node['const']!r}"
    if "enum" in node:
        return "enum(" + ", ".join(sorted(map(str, node["enum"]))) + ")"
    kind = node.get("type", "any")
    kind = " | ".join(sorted(kind)) if isinstance(kind, list) else kind
    if kind == "array":
        return f"array of {_kind(node.get('items', {}), defs)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_kind(node['additionalProperties'], defs)}"
    return f"{kind} ({node['format']})" if "format" in node else kind


def _bounds(node: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    node = resolve(node, defs)
    found = {prefix + key: node[key] for key in BOUNDS if key in node}
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        found |= _bounds(option, defs, prefix)
    if isinstance(node.get("items"), dict):
        found |= _bounds(node["items"], defs, prefix + "items.")
    if isinstance(node.get("additionalProperties"), dict):
        found |= _bounds(node["additionalProperties"], defs, prefix + "values.")
    return found


def resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` into `$defs` names (pydantic's form)."""
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _parent_unchanged(path: str, before: dict[str, Shape], after: dict[str, Shape]) -> bool:
    """Whether a field's parent is in both schemas with the same kind (else the parent says it all)."""
    if "." not in path:
        return True
    parent = path.rsplit(".", 1)[0]
    while parent.endswith(("[]", "{}")):
        parent = parent[:-2]
    return parent in before and parent in after and before[parent].kind == after[parent].kind


def _show(bounds: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in bounds) or "none"


Handler = Callable[[Any, Any, Any], Awaitable[None]]


def upcasting(convert: Callable[[Any], Any], handler: Handler) -> Handler:
    """A handler of a new version that takes the old one too, converted: during a migration a
    consumer lists both versions in its handler table, each with one handler behind it."""
    async def handle(event: Any, delivery: Any, deps: Any) -> None:
        await handler(convert(event), delivery, deps)
    return handle

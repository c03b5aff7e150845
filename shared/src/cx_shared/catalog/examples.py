"""An example of every event, made from its contract and the envelope, so it is always valid:
the payload is what the contract's model dumps, the headers what the envelope sends. Values
come from a field's name where it tells (a city, a country, an amount), else from its type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.events import Event
from cx_shared.evolution import resolve

MAX_DEPTH = 4
EXAMPLE_TIME = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
NAMESPACE = uuid.UUID("6c1f1b9e-2f55-4a53-9a0c-6b3e0f0c7d21")  # fixed ids: the catalog is reproducible
BY_NAME: dict[str, Any] = {
    "application_id": "app-8f14e45f", "call_id": "call-photonics-2027-1", "partnership_id": "ptn-photonics4industry",
    "organisation_id": "org-madrid-photonics", "host_id": "org-lyon-optics", "offer_id": "offer-laser-welding",
    "visitor_organisation_id": "org-madrid-photonics", "payee_organisation_id": "org-madrid-photonics",
    "legal_name": "Madrid Photonics Cluster", "payee_legal_name": "Madrid Photonics Cluster",
    "partnership_name": "Photonics4Industry", "cluster_name": "Madrid Photonics Cluster",
    "country": "ES", "payee_country": "ES", "city": "Madrid", "language": "en", "name": "Ana García",
    "email": "ana@madrid-photonics.example.es", "contact_email": "exchanges@photonics4industry.example.eu",
    "phone": "+34 910 000 000", "title": "Laser welding pilot line", "kind": "prefinancing",
    "rule_set_version": "default-v1", "payment_id": "pay-3c59dc04", "notification_id": "mail-c4ca4238",
    "template": "application_approved", "recipient_role": "visitor", "cause_event_type": "eu.clusterxchange.x.v1",
    "document_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "document_path": "/agreements/app-8f14e45f.pdf", "finance_reference": "SEPA-2027-000123",
    "distance_band": "500-1999", "travel_mode": "green", "subtype": "technology_centre",
    "satisfaction": 4, "working_days": 5, "actual_working_days": 5, "planned_working_days": 5,
    "eligible_countries": ["ES", "FR", "IT", "PT"], "countries": ["ES", "FR", "IT"], "roles": ["visitor"],
    "member_clusters": ["Madrid Photonics Cluster", "Optitec", "Photonics Sud"],
    "members": [{"legal_name": "Madrid Photonics Cluster", "country": "ES", "region_category": "more_developed"},
                {"legal_name": "Optitec", "country": "FR", "region_category": "transition"},
                {"legal_name": "Photonics Sud", "country": "IT", "region_category": "less_developed"}],
    "reason": "the host can no longer receive the visitor in March", "reasons": ["every eligibility rule passed"],
    "objectives": "See the host's pilot line for laser welding.",
    "summary": "Saw the pilot line; a joint project follows.",
    "travel_cents": 53_000, "subsistence_cents": 72_500, "total_cents": 125_500, "amount_cents": 62_750,
    "budget_cents": 5_000_000, "available_after_cents": 4_874_500, "prefinancing_cents": 62_750,
    "distance_km": 1052, "score": 82.5, "final_score": 82.5, "report_due_days": 30, "assessors_required": 1,
}
BY_SUFFIX = {"_cents": 120_000, "_id": "id-0001", "_by": "staff-ana", "_days": 5}
BY_FORMAT = {"date": "2027-03-01", "date-time": "2027-03-01T09:30:00Z", "email": "ana@madrid-photonics.example.es"}


def example(cls: type[Event], key_field: str) -> dict[str, Any]:
    schema = cls.model_json_schema()
    event = cls.model_validate(_object(schema, schema.get("$defs", {})))
    key = getattr(event, key_field) or "app-8f14e45f"
    envelope = Envelope.wrap(event, source=cls.topic.sources[0], subject=key)
    envelope = envelope.model_copy(update={
        "id": str(uuid.uuid5(NAMESPACE, cls.ce_type())), "time": EXAMPLE_TIME,
        "correlationid": str(uuid.uuid5(NAMESPACE, "correlation")), "causationid": str(uuid.uuid5(NAMESPACE, "cause"))})
    return {"name": f"{cls.name}-v{cls.version}", "summary": f"{cls.__name__} as it is on the topic",
            "headers": {k: v.decode() for k, v in envelope.kafka_headers()}, "payload": envelope.data}


def _object(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    node = resolve(node, defs)
    required = set(node.get("required", ()))
    # Deep down, only what is required: a model that contains itself (optionally) ends there.
    return {name: _value(name, prop, defs, depth + 1) for name, prop in node.get("properties", {}).items()
            if depth < MAX_DEPTH or name in required}


def _value(name: str, node: dict[str, Any], defs: dict[str, Any], depth: int) -> Any:
    node = resolve(node, defs)
    if node.get("default") not in (None, "", [], {}):
        return node["default"]
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if options:
        return _value(name, options[0], defs, depth)
    if "enum" in node:
        return node["enum"][0]
    if name in BY_NAME:
        return BY_NAME[name]
    kind = node.get("type")
    if kind == "object":
        values = node.get("additionalProperties")
        return _object(node, defs, depth) if "properties" in node else ({"quality": 80} if values else {})
    if kind == "array":
        return [_value(name.rstrip("s"), node.get("items", {}), defs, depth)]
    return _scalar(name, kind, node)


def _scalar(name: str, kind: str | None, node: dict[str, Any]) -> Any:
    if node.get("format") in BY_FORMAT:
        return BY_FORMAT[node["format"]]
    suffix = next((v for s, v in BY_SUFFIX.items() if name.endswith(s)), None)
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        return max(suffix if isinstance(suffix, int) else 1, low + (1 if "exclusiveMinimum" in node else 0))
    if kind == "boolean":
        return True
    if kind == "string":
        text = suffix if isinstance(suffix, str) else f"{name.replace('_', ' ')} (example)"
        return text[:node.get("maxLength", len(text))]
    return None


"""Checked schema evolution: every committed event version is still honoured by its contract,
and the checker finds each kind of backward-incompatible change (on synthetic edits of a
real contract, so the check is shown able to fail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, create_model

from cx_shared.catalog.files import incompatible, orphans, snapshot_path, write
from cx_shared.events import Event, all_event_classes
from cx_shared.events.applications import ApplicationSubmitted
from cx_shared.events.common import Participant
from cx_shared.events.grants import GrantCommitted
from cx_shared.catalog.examples import example
from cx_shared.evolution import ADVICE, breaches, fields
from cx_shared.testing.contracts import synthetic_contract
from cx_shared.topics import GRANTS

DOCS = Path(__file__).resolve().parents[2] / "docs"
TYPE = GrantCommitted.ce_type()


def test_every_event_version_has_a_committed_schema():
    missing = [str(snapshot_path(DOCS, c)) for c in all_event_classes() if not snapshot_path(DOCS, c).exists()]
    assert not missing, f"no committed schema for {missing}: run `make catalog` and commit docs/schemas/"


def test_every_committed_version_is_still_honoured_by_its_contract():
    found = incompatible(DOCS)
    assert not found, "\n".join(map(str, found)) + "\n" + ADVICE


def test_a_committed_version_is_retired_only_by_deleting_its_schema():
    assert orphans(DOCS) == [], "a contract was removed: a version is retired by the procedure in the README"


def schema_of(*edits: tuple[str, object, object]) -> dict:
    """GrantCommitted v1's schema as it would be after some edits: (field, type, default)
    added or replaced, a type of None removing the field. Made by a real pydantic model."""
    fields = {name: (f.annotation, f) for name, f in GrantCommitted.model_fields.items()}
    for name, annotation, default in edits:
        fields.pop(name) if annotation is None else fields.__setitem__(name, (annotation, default))
    def define() -> type[Event]:
        return create_model("Edited", __base__=Event, __cls_kwargs__={"name": "test.edited", "topic": GRANTS},
                            **fields)
    with synthetic_contract(define) as cls:
        return cls.model_json_schema()


def rules(schema: dict, old: dict | None = None) -> set[tuple[str, str]]:
    return {(b.path, b.rule) for b in breaches(TYPE, old or GrantCommitted.model_json_schema(), schema)}


def test_an_unchanged_contract_and_a_new_optional_field_pass():
    assert rules(GrantCommitted.model_json_schema()) == set()
    assert rules(schema_of(("currency", str, "EUR"), ("note", str | None, None))) == set()


def test_a_removed_field_is_refused():
    assert rules(schema_of(("distance_km", None, ...))) == {("distance_km", "removed")}


def test_a_renamed_field_is_a_removal_and_a_new_required_field():
    renamed = schema_of(("total_cents", None, ...), ("amount_cents", int, ...))
    assert rules(renamed) == {("total_cents", "removed"), ("amount_cents", "required")}


def test_a_changed_type_is_refused_even_when_it_widens():
    assert rules(schema_of(("total_cents", str, ...))) == {("total_cents", "type")}
    assert rules(schema_of(("total_cents", int | None, None))) == {("total_cents", "type")}


def test_a_new_required_field_is_refused():
    assert rules(schema_of(("currency", str, ...))) == {("currency", "required")}


def test_a_changed_bound_is_refused():
    assert rules(schema_of(("total_cents", int, Field(ge=1)))) == {("total_cents", "bound")}


def test_changes_inside_a_nested_model_are_found_by_their_path():
    old = ApplicationSubmitted.model_json_schema()
    new = ApplicationSubmitted.model_json_schema()
    participant = new["$defs"]["Participant"]
    participant["properties"].pop("city")
    participant["required"].append("vat_number")
    participant["properties"]["vat_number"] = {"type": "string"}
    new["$defs"]["Contact"]["properties"]["email"] = {"type": "string"}  # no longer format: email
    new["$defs"]["Ecosystem"]["enum"].append("space")
    found = {(b.path, b.rule) for b in breaches(ApplicationSubmitted.ce_type(), old, new)}
    assert found == {("visitor.city", "removed"), ("host.city", "removed"),
                     ("visitor.vat_number", "required"), ("host.vat_number", "required"),
                     ("visitor.contact.email", "type"), ("host.contact.email", "type"),
                     ("ecosystems", "type"), ("visitor_ecosystems", "type"), ("host_ecosystems", "type")}
    assert Participant.model_json_schema()["properties"]["city"]  # the real contract is untouched


def test_the_message_names_the_event_field_and_rule_and_says_to_publish_a_new_version():
    (breach,) = breaches(TYPE, GrantCommitted.model_json_schema(), schema_of(("distance_km", None, ...)))
    assert str(breach).startswith("eu.clusterxchange.grant.committed.v1: distance_km: removed (a removed or renamed")
    assert "publish a new version" in ADVICE


def test_writing_the_catalog_refuses_an_incompatible_change(tmp_path):
    published = schema_of(("currency", str, ...))  # as if v1 had been published with a currency
    path = snapshot_path(tmp_path, GrantCommitted)
    path.parent.mkdir()
    path.write_text(json.dumps(published))
    with pytest.raises(SystemExit, match="grant.committed.v1: currency: removed") as refused:
        write(tmp_path, packaged=tmp_path / "asyncapi.json")
    assert ADVICE in str(refused.value)
    assert json.loads(path.read_text()) == published
    assert not (tmp_path / "asyncapi.yaml").exists() and not (tmp_path / "asyncapi.json").exists()


class Step(BaseModel):
    label: str
    next: Step | None = None


def test_a_model_that_contains_itself_is_compared_and_exemplified_without_end():
    def define() -> type[Event]:
        class Route(Event, name="test.route", topic=GRANTS):
            application_id: str
            first: Step
        return Route

    with synthetic_contract(define) as route:
        schema = route.model_json_schema()
        assert "first.next.next.label" in fields(schema)
        edited = json.loads(json.dumps(schema))
        edited["$defs"]["Step"]["properties"].pop("label")
        assert ("first.label", "removed") in {(b.path, b.rule) for b in breaches(route.ce_type(), schema, edited)}
        assert route.model_validate(example(route, "application_id")["payload"]).first.label

"""The event catalog: committed and up to date, a valid AsyncAPI 3.0 document (checked with the
official JSON Schema, npm @asyncapi/specs, installed by `make install`), and saying what the
code does: every topic, every contract with its producer, its consumers (their handler
tables), its headers, key and a valid example."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema_rs
import pytest

from cx_shared import catalog
from cx_shared.catalog.document import key_field, message_id
from cx_shared.catalog.files import consumers, stale
from cx_shared.catalog.page import render
from cx_shared.envelope import Envelope
from cx_shared.events import all_event_classes, event_class
from cx_shared.events.grants import GrantRefused
from cx_shared.testing.catalog import off_catalog
from cx_shared.topics import EVENT_TOPICS, GRANTS, qualified, service_source

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tools" / "asyncapi-specs" / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"


@pytest.fixture(scope="module")
def document() -> dict:
    return catalog.packaged()


@pytest.fixture(scope="module")
def asyncapi_validator():
    assert SPECS.exists(), f"{SPECS} is missing: `make install` installs it (tools/asyncapi-specs)"
    return jsonschema_rs.validator_for(json.loads(SPECS.read_text()))


def test_the_committed_catalog_and_schemas_are_regenerated(document):
    out_of_date = [str(p.relative_to(ROOT)) for p in stale(ROOT / "docs")]
    assert not out_of_date, f"contracts or handlers changed: run `make catalog` and commit {out_of_date}"


def test_the_catalog_is_a_valid_asyncapi_3_document(document, asyncapi_validator):
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message[:200]}"
              for e in asyncapi_validator.iter_errors(document)]
    assert not errors, errors[:10]


def test_the_validator_refuses_a_broken_catalog(document, asyncapi_validator):
    broken = copy.deepcopy(document)
    broken["components"]["messages"]["grant.committed.v1"]["correlationId"]["location"] = "ce_correlationid"
    assert not asyncapi_validator.is_valid(broken)
    del broken["info"]["version"]
    assert not asyncapi_validator.is_valid(broken)


def test_every_topic_is_a_channel_and_every_contract_a_message_on_its_topic(document):
    # The keys topic carries no CloudEvents (a subject's key, or its tombstone): not a channel of the catalog.
    assert {c["address"] for c in document["channels"].values()} == {t.name for t in EVENT_TOPICS}
    for cls in all_event_classes():
        channel = document["channels"][cls.topic.name]
        assert message_id(cls) in channel["messages"], cls
        message = document["components"]["messages"][message_id(cls)]
        assert message["x-ce-type"] == cls.ce_type() and message["x-producer"] == cls.topic.producer
        assert message["correlationId"]["location"] == "$message.header#/ce_correlationid"
        assert key_field(cls) in message["bindings"]["kafka"]["key"]["description"]


def test_producers_send_and_each_consumer_receives_what_its_handler_table_handles(document):
    operations = document["operations"]
    for topic in EVENT_TOPICS:
        contracts = [c for c in all_event_classes() if c.topic is topic]
        if contracts:
            sent = operations[f"{topic.producer}.sends.{topic.name}"]
            assert sent["action"] == "send" and len(sent["messages"]) == len(contracts)
    for party, handled in consumers().items():
        for topic in EVENT_TOPICS:
            mine = {message_id(c) for c in handled if c.topic is topic}
            received = operations.get(f"{party}.receives.{topic.name}", {"messages": []})["messages"]
            assert {m["$ref"].rsplit("/", 1)[-1] for m in received} == mine, (party, topic.name)
    assert "finance.receives.cx.grants.v1" in operations  # the partnership's finance system: payment orders


def payload_validator(document: dict, message: dict):
    """A validator of the message's payload with the catalog's shared schemas to resolve against."""
    return jsonschema_rs.Draft202012Validator({**message["payload"], "components": document["components"]})


def headers_validator(document: dict, message: dict):
    return jsonschema_rs.Draft202012Validator({**message["headers"], "components": document["components"]})


def test_every_example_is_a_valid_event_with_the_headers_the_envelope_sends(document):
    for message_name, message in document["components"]["messages"].items():
        if "x-ce-type" not in message:
            continue  # the dead letter: any value
        (example,) = message["examples"]
        cls = event_class(message["x-ce-type"])
        assert cls.model_validate(example["payload"]).model_dump(mode="json") == example["payload"]
        assert payload_validator(document, message).is_valid(example["payload"]), message_name
        assert headers_validator(document, message).is_valid(example["headers"]), message_name
        assert example["headers"]["ce_subject"] == example["payload"][key_field(cls)]


def test_the_headers_schema_refuses_what_the_envelope_would_not_send(document):
    message = document["components"]["messages"]["grant.committed.v1"]
    headers = message["examples"][0]["headers"]
    validator = headers_validator(document, message)
    assert not validator.is_valid({**headers, "ce_type": "eu.clusterxchange.grant.refused.v1"})
    assert not validator.is_valid({**headers, "ce_source": "/clusterxchange/assessment"})
    assert not validator.is_valid({k: v for k, v in headers.items() if k != "ce_correlationid"})


def test_a_service_in_a_namespace_serves_its_own_topic_and_group_names(document):
    served = catalog.served("t1a2b")
    assert served["channels"]["cx.grants.v1"]["address"] == qualified("cx.grants.v1", "t1a2b")
    group = served["operations"]["notifications.receives.cx.grants.v1"]["bindings"]["kafka"]["groupId"]["const"]
    assert group == "notifications.t1a2b"
    assert catalog.served()["channels"]["cx.grants.v1"]["address"] == "cx.grants.v1"  # the packaged copy unchanged


def test_the_page_lists_every_event_with_its_schema_and_example(document):
    page = render(document)
    for cls in all_event_classes():
        assert cls.ce_type() in page
    assert page.count("<details>") == 2 * len(all_event_classes()) + 1  # the dead letter has no example
    assert "<script" not in page


def test_records_the_catalog_does_not_describe_are_found():
    """The check the integration and end-to-end tests run over the real records can fail."""
    envelope = Envelope.wrap(GrantRefused(application_id="a1", call_id="c1", reason="no budget left"),
                             source=service_source("grants"), subject="a1")
    record = SimpleNamespace(topic=qualified(GRANTS, "t1a2b"), offset=0, key=b"a1",
                             headers=envelope.kafka_headers(), value=envelope.kafka_value())
    assert off_catalog([record], "t1a2b") == []
    wrong_key = SimpleNamespace(**{**vars(record), "key": b"a9"})
    assert off_catalog([wrong_key], "t1a2b") == [f"{record.topic}@0: key b'a9', but the catalog says 'a1'"]
    forged = [(k, b"/clusterxchange/assessment" if k == "ce_source" else v) for k, v in record.headers]
    assert "ce_source" in off_catalog([SimpleNamespace(**{**vars(record), "headers": forged})], "t1a2b")[0]
    elsewhere = SimpleNamespace(**{**vars(record), "topic": GRANTS.name})
    assert off_catalog([elsewhere], "t1a2b")[0].endswith("no channel of the catalog has this address")

"""Unit checks of event origin: which records a consumer believes, the topics table against the
services' handler tables, and the broker settings that are refused (no broker needed)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import SecretStr

from cx_shared.broker_access import grants
from cx_shared.consumer import forgery
from cx_shared.envelope import Envelope
from cx_shared.events.applications import ApplicationWithdrawn
from cx_shared.events.grants import PaymentConfirmed
from cx_shared.kafka import client_options
from cx_shared.settings import KafkaSettings, ServiceSettings
from cx_shared.topics import (APPLICATIONS, EVENT_TOPICS, FINANCE, FINANCE_SOURCE, KEYS, SERVICES, consumer_group,
                              qualified, service_source)


def withdrawal(source: str) -> tuple[Envelope, ApplicationWithdrawn]:
    event = ApplicationWithdrawn(application_id="a", call_id="c")
    return Envelope.wrap(event, source=source, subject="a"), event


def confirmation(source: str) -> tuple[Envelope, PaymentConfirmed]:
    event = PaymentConfirmed(payment_id="p", application_id="a", call_id="c", amount_cents=100)
    return Envelope.wrap(event, source=source, subject="a"), event


def test_an_event_from_its_producer_on_its_topic_is_believed():
    assert forgery(*withdrawal("/clusterxchange/applications"), qualified(APPLICATIONS, "t1"), "t1") is None
    assert forgery(*confirmation(FINANCE_SOURCE), "cx.finance.v1") is None


def test_an_event_on_another_topic_or_from_another_source_is_forged():
    assert "not cx.grants.v1.t1" in forgery(*withdrawal("/clusterxchange/applications"), "cx.grants.v1.t1", "t1")
    assert "not /clusterxchange/grants" in forgery(*withdrawal("/clusterxchange/grants"), "cx.applications.v1")
    # grants orders payments; only the partnership's finance system confirms them
    assert forgery(*confirmation("/clusterxchange/grants"), "cx.finance.v1")


def test_each_topic_allows_the_source_of_its_producer_only():
    for topic in (t for t in EVENT_TOPICS if t.producer in SERVICES):
        assert topic.sources == (service_source(topic.producer),)
    assert FINANCE.sources == (FINANCE_SOURCE,) and FINANCE.producer == "finance"


@pytest.mark.parametrize("service", SERVICES)
def test_the_readers_of_each_topic_are_the_services_whose_handlers_consume_it(service):
    """The broker's read ACLs come from Topic.readers: a handler on a topic the table does not
    let its service read would be refused by the broker, a reader without a handler is a right too many."""
    handlers = importlib.import_module(f"{service}.handlers").HANDLERS
    assert {cls.topic.name for cls in handlers} == {t.name for t in EVENT_TOPICS if service in t.readers}
    # The keys topic is read by the key ring of every service, no outside reader: see personal_data.keys.
    assert KEYS.readers == SERVICES and KEYS.sources == ()


@pytest.mark.parametrize("service", SERVICES)
def test_each_rebuild_reads_only_what_the_broker_lets_its_service_read(service):
    """A rebuild replays the topics its service consumes and its own (what its HTTP requests made)."""
    replay = importlib.import_module(f"{service}.rebuild").REPLAY
    readable = {g.name for g in grants() if (g.principal, g.operation, g.resource) == (service, "READ", "topic")}
    assert {cls.topic.name for cls in replay.handlers} <= readable
    assert qualified(next(t for t in EVENT_TOPICS if t.producer == service)) in replay.topics("")


def test_a_namespace_is_a_suffix_of_topics_and_groups():
    assert qualified(APPLICATIONS, "t1a2b") == "cx.applications.v1.t1a2b" == qualified(APPLICATIONS, "t1a2b.")
    assert qualified(APPLICATIONS) == "cx.applications.v1"
    assert consumer_group("grants", "t1a2b") == "grants.t1a2b" == ServiceSettings(
        service_name="grants", topic_namespace="t1a2b").consumer_group
    assert consumer_group("grants") == "grants"


def test_a_client_without_credentials_or_in_plaintext_off_loopback_is_refused():
    with pytest.raises(ValueError, match="KAFKA_USERNAME and KAFKA_PASSWORD are required"):
        client_options(KafkaSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_username=""))
    with pytest.raises(ValueError, match="PLAINTEXT"):
        client_options(KafkaSettings(kafka_bootstrap_servers="kafka:9092", kafka_security_protocol="PLAINTEXT"))
    assert client_options(KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9092",
                                        kafka_security_protocol="PLAINTEXT"))["security_protocol"] == "PLAINTEXT"


def test_the_default_asks_for_credentials_and_the_password_never_shows():
    settings = KafkaSettings(_env_file=None, kafka_username="grants", kafka_password=SecretStr("s3cret-pw"))
    assert KafkaSettings.model_fields["kafka_security_protocol"].default == "SASL_SSL"
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings.model_dump())
    options = client_options(settings.model_copy(update={"kafka_security_protocol": "SASL_PLAINTEXT"}))
    assert options["sasl_plain_username"] == "grants" and options["sasl_plain_password"] == "s3cret-pw"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    refused = ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_username="", kafka_password=SecretStr(""))
    assert refused.kafka_refusals()

"""Observability of the four running services over real HTTP, Kafka and database: `/metrics`
moves through an exchange's lifecycle, and with OTEL_EXPORTER_OTLP_ENDPOINT set, one exchange is
one trace across the services (spans received by a real OTLP/HTTP receiver)."""

from __future__ import annotations

import importlib

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cx_shared.events.applications import ApplicationSubmitted, ApplicationSubmittedV2
from cx_shared.events.assessment import ApplicationApproved, EligibilityChecked, HostAccepted
from cx_shared.events.grants import GrantCommitted
from cx_shared.testing.kafka import publish_raw
from cx_shared.testing.waiting import eventually
from cx_shared.topics import APPLICATIONS, qualified
from tests.journey import Journey
from tests.otlp import OtlpReceiver
from tests.test_lifecycle_e2e import SERVICES, run_to_committed_grant

pytestmark = pytest.mark.infra


def scrape(url: str) -> list:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def total(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


async def test_metrics_move_through_a_lifecycle(run_service, infra, namespace, token):
    system = {name: run_service(name) for name in SERVICES}
    before = {name: scrape(service.url) for name, service in system.items()}
    journey = Journey(system["applications"].url, token)
    await run_to_committed_grant(journey, system)

    after = {name: scrape(service.url) for name, service in system.items()}
    def moved(service: str, name: str, **labels: str) -> bool:
        return total(after[service], name, **labels) > total(before[service], name, **labels)

    # HTTP, by route template and status (never the path with its ids)
    assert moved("applications", "http_requests_total", route="/applications", status="201")
    assert moved("applications", "http_request_duration_seconds_count", route="/applications/{application_id}")
    assert moved("assessment", "http_requests_total", route="/applications/{application_id}/host-decision")
    assert not [s for s in after["applications"] if s.labels.get("route", "").startswith("/applications/app")]
    # events by type: consumed and handled, their handlers timed, published by the relay
    handled = {"assessment": ApplicationSubmittedV2, "grants": HostAccepted, "applications": GrantCommitted}
    for service, event in handled.items():
        assert moved(service, "cx_events_consumed_total", event_type=event.ce_type(), outcome="handled"), service
        assert moved(service, "cx_handler_duration_seconds_count", event_type=event.ce_type()), service
    published = {"applications": ApplicationSubmittedV2, "assessment": EligibilityChecked, "grants": GrantCommitted}
    for service, event in published.items():
        assert moved(service, "cx_events_published_total", event_type=event.ce_type()), service
    for service in SERVICES:  # FastStream's own middleware counts the records of each batch
        assert moved(service, "faststream_received_messages_total"), service
        assert moved(service, "faststream_received_processed_messages_duration_seconds_count"), service
        lag = [s for s in after[service] if s.name == "cx_consumer_lag"]
        assert lag and all(s.value >= 0 for s in lag), service
    for service in SERVICES:  # every outbox collection is watched, and the backlog drains to nothing
        collections = set(importlib.import_module(f"{service}.storage").OUTBOX_COLLECTIONS)

        def drained(url=system[service].url, collections=collections):
            samples = scrape(url)
            gauges = {(s.name, s.labels["collection"]): s.value for s in samples if s.name.startswith("cx_outbox_")}
            wanted = {(name, c) for name in ("cx_outbox_pending", "cx_outbox_oldest_age_seconds") for c in collections}
            return set(gauges) == wanted and not any(gauges.values())
        await eventually(drained, what=f"{service}'s outbox gauges at 0")

    # a malformed record: each consumer counts the dead letter it wrote, by reason and type
    await publish_raw(infra.kafka, qualified(APPLICATIONS, namespace), b"not json", key=b"poison",
                      headers=[("ce_id", b"m-1"), ("ce_source", b"/fuzzer"), ("ce_specversion", b"1.0"),
                               ("ce_type", ApplicationSubmitted.ce_type().encode())])
    await eventually(lambda: total(scrape(system["assessment"].url), "cx_dead_letters_total", reason="malformed",
                                   event_type=ApplicationSubmitted.ce_type()) == 1, what="the dead letter counted")


async def test_one_exchange_is_one_trace_across_the_four_services_and_a_later_request_links_to_it(run_service, token):
    """The submission's trace runs through every service (grants records the exchange's facts and
    its approval in it). The host's answer, days later in real life, is a request of its own and so a
    trace of its own, as OpenTelemetry has it; its span links to the exchange's trace, and grants'
    commitment continues the answer's trace."""
    with OtlpReceiver() as otlp:
        tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        system = {name: run_service(name, **tracing) for name in SERVICES}
        journey = Journey(system["applications"].url, token)
        journey.open_call()
        journey.enrol_pair()
        app_id = journey.submit()["application_id"]

        def submission():
            return next((s for s in otlp.spans if s.service == "applications" and s.name == "POST /applications"
                         and s.attributes.get("http.route") == "/applications"), None)
        request = await eventually(submission, what="the span of the HTTP request")

        def whole_trace():
            spans = otlp.trace(request.trace_id)
            names = {(s.service, s.name) for s in spans}
            return ({s.service for s in spans} == set(SERVICES)
                    # the consumers continued the stored events' trace, and their database work is in it (PyMongo)
                    and ("assessment", f"handle {ApplicationSubmittedV2.ce_type()}") in names
                    and ("grants", f"handle {ApplicationSubmittedV2.ce_type()}") in names
                    and ("grants", f"handle {ApplicationApproved.ce_type()}") in names
                    and any(s.service == "assessment" and s.attributes.get("db.system") for s in spans))
        await eventually(whole_trace, timeout=60, what="the exchange's spans from the four services, the consumers' "
                                                       "spans of the submission and approval and database spans")

        await journey.wait_status(app_id, "approved")
        answer = httpx.post(f"{system['assessment'].url}/applications/{app_id}/host-decision", json={"accept": True},
                            headers=journey.host_headers, timeout=20)
        assert answer.status_code == 200, answer.text

        def linked_answer():
            return next((s for s in otlp.spans if s.service == "assessment" and s.name == "act on application"
                         and s.attributes.get("cx.application_id") == app_id), None)
        acting = await eventually(linked_answer, what="the span of the host's answer")
        assert acting.trace_id != request.trace_id and acting.links == (request.trace_id,)

        def commitment_follows_the_answer():
            names = {(s.service, s.name) for s in otlp.trace(acting.trace_id)}
            return {("assessment", "POST /applications/{application_id}/host-decision"),
                    ("grants", f"handle {HostAccepted.ce_type()}")} <= names
        await eventually(commitment_follows_the_answer, timeout=60,
                         what="the answer's request span and grants' handling of host.accepted in one trace")

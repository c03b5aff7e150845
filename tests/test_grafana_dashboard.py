"""deploy/grafana/clusterxchange-services.json is a dashboard Grafana can import: its panels fit the
24-column grid without overlapping, each query is PromQL that parses (once Grafana's variables are
put in), names a declared data source variable, and between them the queries read exactly the
metrics the services are to expose (a misspelt name would show an empty panel, not an error)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import promql_parser
import pytest

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "clusterxchange-services.json"
METRICS = {"http_requests_total", "http_request_duration_seconds", "faststream_received_messages_total",
           "faststream_received_processed_messages_duration_seconds", "cx_events_consumed_total",
           "cx_handler_duration_seconds", "cx_events_published_total", "cx_consumer_lag", "cx_outbox_pending",
           "cx_outbox_oldest_age_seconds", "cx_dead_letters_total"}
GRAFANA_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}  # what Grafana puts in
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "bargauge"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_it_is_a_dashboard_grafana_imports(dashboard):
    assert {"uid", "title", "panels", "schemaVersion", "templating", "time"} <= set(dashboard)
    assert isinstance(dashboard["schemaVersion"], int) and re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert {p["type"] for p in dashboard["panels"]} <= PANEL_TYPES
    for panel in panels(dashboard):
        assert panel["title"] and panel["targets"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard):
    cells = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        cells[panel["title"]] = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
    for (a, cells_a), (b, cells_b) in itertools.combinations(cells.items(), 2):
        assert not cells_a & cells_b, f"{a} overlaps {b}"


def test_every_query_uses_the_dashboards_data_source_and_declared_variables(dashboard):
    declared = variables(dashboard)
    assert declared["datasource"]["type"] == "datasource" and declared["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    for expr in queries(dashboard):
        used = set(re.findall(r"\$(\w+)", expr))
        assert used <= set(declared) | set(GRAFANA_VARIABLES), expr


def test_every_query_is_promql_and_they_read_exactly_the_services_metrics(dashboard):
    read = set()
    for expr in queries(dashboard):
        read |= metric_names(promql_parser.parse(substituted(expr)))  # raises ValueError on bad PromQL
    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in read} == METRICS


def test_a_misspelt_query_would_be_caught():
    with pytest.raises(ValueError):
        promql_parser.parse(substituted('sum by (job) (rate(http_requests_total{job=~"$job"}[$__rate_interval])'))
    assert metric_names(promql_parser.parse("rate(cx_outbox_pendng[5m])")) == {"cx_outbox_pendng"}


def substituted(expr: str) -> str:
    """The query as Grafana sends it: its own variables as durations, ours as 'everything'."""
    expr = re.sub(r"\$(__\w+)", lambda m: GRAFANA_VARIABLES[m[1]], expr)
    return re.sub(r"\$\w+", ".*", expr)


def metric_names(node) -> set[str]:
    """The metric names a parsed query selects."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name}
    children = [getattr(node, attr) for attr in ("args", "expr", "lhs", "rhs", "vector_selector", "param")
                if hasattr(node, attr)]
    flat = [c for child in children for c in (child if isinstance(child, list) else [child]) if c is not None]
    return set().union(*(metric_names(c) for c in flat)) if flat else set()

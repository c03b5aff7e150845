"""The impact indicators against a hand-computed expectation on a seeded data set (pure)."""

from datetime import UTC, datetime, timedelta

from applications import dashboard, domain, indicators

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
NO_SPLIT = {"travel_cents": 0, "subsistence_cents": 0}
SUBMISSION = {"visitor": {"legal_name": "V", "country": "FR"}, "host": {"legal_name": "H", "country": "DE"},
              "planned_start": "2027-03-01", "planned_end": "2027-03-05", "working_days": 5}


def at(name: str, hours: float, **data) -> dict:
    return domain.timeline_entry(event_id=f"{name}-{hours}-{len(data)}", ce_type=f"eu.clusterxchange.{name}.v1",
                                 source="/t", at=T0 + timedelta(hours=hours), data=data)


def exchange(visitor: tuple[str, list[str]], host: tuple[str, list[str]], purposes, travel, days, status,
             milestones, **extra) -> dict:
    return {"visitor": {"country": visitor[0]}, "host": {"country": host[0]},
            "visitor_ecosystems": visitor[1], "host_ecosystems": host[1],
            "ecosystems": sorted(set(visitor[1]) | set(host[1])), "purposes": purposes, "travel_mode": travel,
            "working_days": days, "status": status,
            "milestones": [at("application.submitted", 0, **SUBMISSION), *milestones], **extra}


SEEDED = [
    # A: FR -> DE, green, 5 planned / 4 actual working days, reported and accepted, balance ordered
    exchange(("FR", ["digital"]), ("DE", ["digital", "renewable_energy"]),
             ["learn_from_other_cluster", "explore_new_markets"], "green", 5, "reported",
             [at("application.approved", 2), at("grant.committed", 3, total_cents=100_000, **NO_SPLIT),
              at("payment.ordered", 4, amount_cents=70_000, kind="prefinancing"),
              at("payment.settled", 5, amount_cents=70_000, kind="prefinancing"),
              at("commitment.reduced", 6, released_cents=10_000, total_after_cents=90_000),
              at("payment.ordered", 7, amount_cents=20_000, kind="balance")],
             actual_working_days=4, report_state="accepted",
             report={"outcomes": ["new_collaboration", "follow_up_project", "MoU signed"], "satisfaction": 5},
             host_feedback={"satisfaction": 4}),
    # B: ES -> DE across ecosystems, standard travel, 10 days, agreement signed
    exchange(("ES", ["tourism"]), ("DE", ["digital"]), ["learn_from_other_cluster"], "standard", 10,
             "agreement_signed",
             [at("application.approved", 6), at("grant.committed", 7, total_cents=200_000, **NO_SPLIT)]),
    # C: FR -> DE, no-show: cancelled, commitment released
    exchange(("FR", ["digital"]), ("DE", ["digital"]), ["take_up_new_technologies"], "green", 3, "cancelled",
             [at("application.approved", 10), at("grant.committed", 11, total_cents=50_000, **NO_SPLIT),
              at("commitment.released", 12, released_cents=50_000)]),
    # D: IT -> FR, rejected after one hour
    exchange(("IT", ["agri_food"]), ("FR", ["agri_food"]), ["explore_new_markets"], "standard", 7, "rejected",
             [at("application.rejected", 1)]),
    # E: FR -> ES across ecosystems, green, 4 planned / 6 actual, completed, report overdue
    exchange(("FR", ["digital"]), ("ES", ["tourism"]), ["learn_from_other_cluster"], "green", 4, "completed",
             [at("application.approved", 3), at("grant.committed", 4, total_cents=80_000, **NO_SPLIT)],
             actual_working_days=6, report_state="due", report_overdue=True, balance_blocked=True),
]


def test_indicators_match_the_hand_computed_expectation():
    result = indicators.compute(SEEDED)
    assert result == {
        "exchanges": 5,
        "by_status": {"agreement_signed": 1, "cancelled": 1, "completed": 1, "rejected": 1, "reported": 1},
        "country_pairs": [{"visitor_country": "FR", "host_country": "DE", "exchanges": 2},
                          {"visitor_country": "ES", "host_country": "DE", "exchanges": 1},
                          {"visitor_country": "FR", "host_country": "ES", "exchanges": 1},
                          {"visitor_country": "IT", "host_country": "FR", "exchanges": 1}],
        "ecosystems": {"agri_food": 1, "digital": 4, "renewable_energy": 1, "tourism": 2},
        "cross_ecosystem_exchanges": 2,  # B and E
        "purposes": {"explore_new_markets": 2, "learn_from_other_cluster": 3, "take_up_new_technologies": 1},
        "undertaken_exchanges": 3,  # A, B, E (C cancelled, D rejected)
        "average_working_days": 6.67,  # (4 actual + 10 planned + 6 actual) / 3
        "green_travel_share": 0.6667,  # A and E of A, B, E
        # issue 13 (f): granted is every grant ever made (it was 370k, the net of releases)
        "budget": {"granted_cents": 430_000,  # 100k + 200k + 50k + 80k
                   "committed_cents": 300_000,  # granted - released - paid
                   "paid_cents": 70_000, "ordered_cents": 90_000, "released_cents": 60_000},
        "decision_hours": {"decided": 5, "median": 3.0, "mean": 4.4},  # 2, 6, 10, 1, 3
        "reports": {"submitted": 1, "accepted": 1, "changes_requested": 0, "overdue": 1, "balance_blocked": 1,
                    "outcomes": {"new_collaboration": 1, "follow_up_project": 1, "technology_taken_up": 0,
                                 "market_opportunity": 0},
                    "visitor_satisfaction_mean": 5.0, "host_satisfaction_mean": 4.0,
                    "satisfaction_distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}},
    }


def test_no_exchanges_no_averages():
    empty = indicators.compute([])
    assert empty["exchanges"] == 0 and empty["average_working_days"] is None
    assert empty["green_travel_share"] is None and empty["decision_hours"] == {"decided": 0, "median": None,
                                                                               "mean": None}


def test_csv_rows_carry_every_figure():
    rows = indicators.rows(indicators.compute(SEEDED))
    assert ("country_pairs", "FR->DE", 2) in rows and ("budget", "paid_cents", 70_000) in rows
    assert ("reports.outcomes", "new_collaboration", 1) in rows and ("green_travel_share", "", 0.6667) in rows


def test_the_dashboard_draws_each_chart_as_inline_svg_with_escaped_labels():
    data = indicators.compute(SEEDED)
    data["by_status"]["<script>"] = 1
    html = dashboard.page(data, {"country": "FR"})
    assert html.count("<svg") == 10 and "<script>" not in html and "&lt;script&gt;" in html
    assert 'id="chart-country-pairs"' in html and "FR → DE" in html and "Scope: country FR" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from elsewhere

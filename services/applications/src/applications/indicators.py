"""The programme's impact indicators: a pure function over the read model (no I/O).

Input: exchanges as the read model holds them (status, parties, purposes, ecosystems, travel
mode, planned and actual working days, report and host feedback, milestones). Money comes from
the grants events among each exchange's milestones (their `figures`):
- granted = GrantCommitted.total_cents: every grant ever made (grants' ledger: its `commitment` entries)
- released = CommitmentReleased.released_cents + CommitmentReduced.released_cents (the `release` entries)
- paid = PaymentSettled.amount_cents (the finance system confirmed it; the `payment_confirmed` entries)
- ordered = PaymentOrdered.amount_cents (prefinancing and balance orders, paid or not)
- committed = granted - released - paid: what is still held against the budget, as grants'
  GET /calls/{id}/budget says
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from cx_shared.vocabulary import OUTCOME_KINDS

DECISIONS = ("application.approved", "application.rejected", "application.waitlisted")
# Exchanges that did not (or will not) take place: out of the duration and travel averages.
NOT_UNDERTAKEN = frozenset({"rejected", "withdrawn", "cancelled", "draft"})


def compute(exchanges: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    items = list(exchanges)
    undertaken = [x for x in items if x.get("status") not in NOT_UNDERTAKEN]
    return {
        "exchanges": len(items),
        "by_status": dict(sorted(Counter(x["status"] for x in items).items())),
        "country_pairs": country_pairs(items),
        "ecosystems": dict(sorted(Counter(e for x in items for e in x.get("ecosystems", [])).items())),
        "cross_ecosystem_exchanges": sum(1 for x in items if crosses_ecosystems(x)),
        "purposes": dict(sorted(Counter(p for x in items for p in x.get("purposes", [])).items())),
        "undertaken_exchanges": len(undertaken),
        "average_working_days": _mean([duration(x) for x in undertaken], 2),
        "green_travel_share": _share(sum(1 for x in undertaken if x.get("travel_mode") == "green"), len(undertaken)),
        "budget": budget(items),
        "decision_hours": decision_hours(items),
        "reports": reports(items),
    }


def country_pairs(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    pairs = Counter((x["visitor"]["country"], x["host"]["country"]) for x in items)
    return [{"visitor_country": v, "host_country": h, "exchanges": n}
            for (v, h), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))]


def crosses_ecosystems(x: Mapping[str, Any]) -> bool:
    """Visitor and host share no industrial ecosystem (unknown when either side's are not recorded)."""
    visitor, host = set(x.get("visitor_ecosystems") or []), set(x.get("host_ecosystems") or [])
    return bool(visitor and host) and not visitor & host


def duration(x: Mapping[str, Any]) -> int:
    """Working days in the host country: the actual ones once the host confirmed the departure."""
    actual = x.get("actual_working_days")
    return actual if actual is not None else x["working_days"]


def budget(items: list[Mapping[str, Any]]) -> dict[str, int]:
    sums = Counter()
    for x in items:
        for entry in x.get("milestones", []):
            figures = entry.get("figures") or {}
            match entry["event"]:
                case "grant.committed":
                    sums["granted"] += figures.get("total_cents", 0)
                case "commitment.released" | "commitment.reduced":
                    sums["released"] += figures.get("released_cents", 0)
                case "payment.settled":
                    sums["paid"] += figures.get("amount_cents", 0)
                case "payment.ordered":
                    sums["ordered"] += figures.get("amount_cents", 0)
    return {"granted_cents": sums["granted"], "committed_cents": sums["granted"] - sums["released"] - sums["paid"],
            "paid_cents": sums["paid"], "ordered_cents": sums["ordered"], "released_cents": sums["released"]}


def decision_hours(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Hours from the submission to the first decision (approval, rejection or waitlisting)."""
    hours = []
    for x in items:
        milestones = x.get("milestones", [])
        submitted = next((e["at"] for e in milestones if e["event"] == "application.submitted"), None)
        decided = next((e["at"] for e in milestones if e["event"] in DECISIONS), None)
        if submitted and decided:
            hours.append((_instant(decided) - _instant(submitted)).total_seconds() / 3600)
    return {"decided": len(hours), "median": round(statistics.median(hours), 2) if hours else None,
            "mean": _mean(hours, 2)}


def reports(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    with_report = [x for x in items if x.get("report")]
    outcomes = Counter(o for x in with_report for o in set(x["report"].get("outcomes") or []) if o in OUTCOME_KINDS)
    visitor = [x["report"]["satisfaction"] for x in with_report if x["report"].get("satisfaction") is not None]
    host = [x["host_feedback"]["satisfaction"] for x in items if (x.get("host_feedback") or {}).get("satisfaction")]
    return {
        "submitted": len(with_report),
        "accepted": sum(1 for x in items if x.get("report_state") == "accepted"),
        "changes_requested": sum(1 for x in items if x.get("report_state") == "changes_requested"),
        "overdue": sum(1 for x in items if x.get("report_overdue")),
        "balance_blocked": sum(1 for x in items if x.get("balance_blocked")),
        "outcomes": {kind: outcomes.get(kind, 0) for kind in OUTCOME_KINDS},
        "visitor_satisfaction_mean": _mean(visitor, 2),
        "host_satisfaction_mean": _mean(host, 2),
        "satisfaction_distribution": {str(score): visitor.count(score) for score in range(1, 6)},
    }


def rows(indicators: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The indicators flattened to (indicator, dimension, value) rows, for the CSV export."""
    out: list[tuple[str, str, Any]] = []
    for key in ("exchanges", "undertaken_exchanges", "cross_ecosystem_exchanges", "average_working_days",
                "green_travel_share"):
        out.append((key, "", indicators[key]))
    for section in ("by_status", "ecosystems", "purposes", "budget", "decision_hours"):
        out += [(section, k, v) for k, v in indicators[section].items()]
    out += [("country_pairs", f"{p['visitor_country']}->{p['host_country']}", p["exchanges"])
            for p in indicators["country_pairs"]]
    for k, v in indicators["reports"].items():
        if isinstance(v, dict):
            out += [(f"reports.{k}", kk, vv) for kk, vv in v.items()]
        else:
            out.append(("reports", k, v))
    return out


def _mean(values: list[float], digits: int) -> float | None:
    return round(statistics.fmean(values), digits) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

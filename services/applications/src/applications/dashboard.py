"""The indicators as a web page: charts drawn here as inline SVG (no JavaScript, no CDN), so
the page works offline, prints, and is the same in every browser. Pure: text in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from applications.domain import euros

COLOURS = ("#1f5fa8", "#2e9e6a", "#e0a030", "#c0504d", "#7d5ba6", "#3aa6b9", "#8c6d46", "#d45fa0")
BAR_HEIGHT, GAP, LABEL_WIDTH, CHART_WIDTH = 22, 6, 230, 620


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart; every bar carries its value as text (readable without colour)."""
    height = max(1, len(bars)) * (BAR_HEIGHT + GAP) + 40
    biggest = max((v for _, v in bars), default=0) or 1
    span = CHART_WIDTH - LABEL_WIDTH - 90
    parts = [f'<svg class="chart" id="{chart_id}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
             f'viewBox="0 0 {CHART_WIDTH} {height}">',
             f'<title>{escape(title)}</title>',
             f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>']
    if not bars:
        parts.append('<text x="0" y="44" font-size="13" fill="#666">no data yet</text>')
    for i, (label, value) in enumerate(bars):
        y = 30 + i * (BAR_HEIGHT + GAP)
        width = max(2, round(span * value / biggest)) if value else 0
        parts += [f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" font-size="13" text-anchor="end" fill="#333">'
                  f'{escape(label)}</text>',
                  f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR_HEIGHT}" '
                  f'fill="{COLOURS[i % len(COLOURS)]}"><title>{escape(label)}: {value}{unit}</title></rect>',
                  f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 15}" font-size="13" fill="#333">'
                  f'{_number(value)}{escape(unit)}</text>']
    parts.append("</svg>")
    return "".join(parts)


def share_chart(chart_id: str, title: str, share: float | None, label: str) -> str:
    """A single 0-100 % gauge (e.g. the share of green travel)."""
    pct = round((share or 0) * 100, 1)
    width = 400
    return (f'<svg class="chart" id="{chart_id}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="70" viewBox="0 0 {CHART_WIDTH} 70">'
            f'<title>{escape(title)}</title>'
            f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>'
            f'<rect x="0" y="30" width="{width}" height="24" fill="#e6e6e6"/>'
            f'<rect class="bar" x="0" y="30" width="{round(width * pct / 100)}" height="24" fill="#2e9e6a"/>'
            f'<text x="{width + 10}" y="47" font-size="14" fill="#333">'
            f'{"n/a" if share is None else f"{pct} %"} {escape(label)}</text></svg>')


def page(ind: Mapping[str, Any], filters: Mapping[str, str]) -> str:
    scope = ", ".join(f"{k} {v}" for k, v in filters.items() if v) or "the whole programme"
    money = ind["budget"]
    decisions, reports = ind["decision_hours"], ind["reports"]
    tiles = [("Exchanges", ind["exchanges"]),
             ("Average duration", f"{_number(ind['average_working_days'])} working days"),
             ("Granted", euros(money["granted_cents"])), ("Paid", euros(money["paid_cents"])),
             ("Decision time (median)", f"{_number(decisions['median'])} h"),
             ("Visitor satisfaction", f"{_number(reports['visitor_satisfaction_mean'])} / 5")]
    charts = [
        bar_chart("chart-status", "Exchanges by status", list(ind["by_status"].items())),
        bar_chart("chart-country-pairs", "Country pairs (visitor → host)",
                  [(f"{p['visitor_country']} → {p['host_country']}", p["exchanges"]) for p in ind["country_pairs"]]),
        bar_chart("chart-ecosystems", "Industrial ecosystems", [(k.replace("_", " "), v)
                                                                for k, v in ind["ecosystems"].items()]),
        bar_chart("chart-purposes", "Purposes", [(k.replace("_", " "), v) for k, v in ind["purposes"].items()]),
        share_chart("chart-green", "Share of green travel", ind["green_travel_share"],
                    f"of {ind['undertaken_exchanges']} exchanges"),
        bar_chart("chart-budget", "Budget (EUR)", [("granted", money["granted_cents"] / 100),
                                                   ("still committed", money["committed_cents"] / 100),
                                                   ("ordered", money["ordered_cents"] / 100),
                                                   ("paid", money["paid_cents"] / 100),
                                                   ("released", money["released_cents"] / 100)]),
        bar_chart("chart-decision", "Time from submission to decision (hours)",
                  [("median", decisions["median"] or 0), ("mean", decisions["mean"] or 0)], " h"),
        bar_chart("chart-outcomes", "Report outcomes", [(k.replace("_", " "), v)
                                                        for k, v in reports["outcomes"].items()]),
        bar_chart("chart-satisfaction", "Visitor satisfaction (reports per score)",
                  [(f"{k} / 5", v) for k, v in reports["satisfaction_distribution"].items()]),
        bar_chart("chart-reports", "Reports", [("submitted", reports["submitted"]), ("accepted", reports["accepted"]),
                                               ("changes requested", reports["changes_requested"]),
                                               ("overdue", reports["overdue"]),
                                               ("balance blocked", reports["balance_blocked"])]),
    ]
    tile_html = "".join(f'<div class="tile"><div class="k">{escape(k)}</div><div class="v">{escape(str(v))}</div></div>'
                        for k, v in tiles)
    chart_html = "".join(f'<section>{c}</section>' for c in charts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ClusterXchange impact indicators</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }}
h1 {{ font-size: 24px; margin: 0 0 4px; }} p.scope {{ color: #555; margin: 0 0 16px; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }}
.tile {{ border: 1px solid #ccd; border-radius: 6px; padding: 10px 14px; min-width: 150px; background: #f5f8fc; }}
.tile .k {{ font-size: 12px; color: #556; }} .tile .v {{ font-size: 20px; font-weight: bold; }}
section {{ margin: 0 0 18px; }}
</style></head>
<body><h1>ClusterXchange impact indicators</h1><p class="scope">Scope: {escape(scope)}</p>
<div class="tiles">{tile_html}</div>{chart_html}</body></html>"""


def _number(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}".rstrip("0").rstrip(".")

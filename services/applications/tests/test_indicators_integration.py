"""The impact indicators over HTTP: a programme seeded through the API and injected upstream
events, compared with hand-computed numbers; the CSV export; the dashboard in a real
headless Chromium (screenshot and DOM)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cx_shared.envelope import Envelope
from cx_shared.events.assessment import ApplicationApproved, ApplicationRejected, HostAccepted
from cx_shared.events.grants import (CommitmentReduced, CommitmentReleased, GrantAgreementAccepted, GrantCommitted,
                                     PaymentOrdered, PaymentSettled)
from cx_shared.testing.kafka import publish_envelope


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


async def inject(p, infra, application: dict, event_cls, after_submission: timedelta | None = None, **fields):
    event = event_cls(application_id=application["application_id"], call_id=application["call_id"], **fields)
    envelope = Envelope.wrap(event, source="/clusterxchange/" + event.topic.producer,
                             subject=application["application_id"])
    if after_submission is not None:  # a decision taken hours after the submission
        submitted = datetime.fromisoformat(application["timeline"][0]["at"].replace("Z", "+00:00"))
        envelope = envelope.model_copy(update={"time": submitted + after_submission})
    await publish_envelope(infra.kafka, envelope, p.namespace)
    await p.eventually(lambda: p.db.applications.find_one({"_id": application["application_id"]}),
                       lambda doc: envelope.id in doc["processed"])


def committed(total: int) -> dict:
    return {"travel_cents": 0, "subsistence_cents": total, "total_cents": total, "rule_set_version": "default-v1",
            "available_after_cents": 0}


def payment(app: dict, kind: str, amount: int) -> dict:
    return {"payment_id": f"{app['application_id']}:{kind}", "kind": kind, "amount_cents": amount}


ORDER = {"payee_organisation_id": "org", "payee_legal_name": "Lyon Cluster", "payee_country": "FR"}


async def seed(p, infra, quiet) -> dict:
    """Four exchanges of one call, all hosted in Berlin:
    X  FR->DE green, reported (3 of 5 working days), report accepted, balance ordered
    Y  ES->DE standard, a tourism visitor (crosses ecosystems), rejected 4 hours after submission
    Z  IT->DE green, two purposes, grant committed then a no-show (released)
    W  BG->DE standard, approved."""
    partnership, call = await p.partnership_and_call()
    host_token = p.token("host", subject="hans")
    host = await p.enrol(host_token, "DE", "Berlin", ["host"])
    start = quiet(40)
    made = {}
    for key, country, city, travel, extra, visitor_extra in (
            ("X", "FR", "Lyon", "green", {}, {}),
            ("Y", "ES", "Bilbao", "standard", {}, {"ecosystems": ["tourism"]}),
            ("Z", "IT", "Turin", "green", {"purposes": ["take_up_new_technologies", "explore_new_markets"]}, {}),
            ("W", "BG", "Sofia", "standard", {}, {})):
        vt = p.token("visitor", subject=f"visitor-{key}")
        visitor = await p.enrol(vt, country, city, ["visitor"], **visitor_extra)
        body = p.application_body(call, visitor, host, start, travel_mode=travel, **extra)
        made[key] = (vt, await p.ok("POST", "/applications", body, vt, status=201))
    (xt, x), (_, y), (_, z), (_, w) = made["X"], made["Y"], made["Z"], made["W"]
    for app in (x, z, w):
        await inject(p, infra, app, ApplicationApproved)
    await inject(p, infra, y, ApplicationRejected, after_submission=timedelta(hours=4), reasons=["out of scope"])
    for app, total in ((x, 111_000), (z, 90_000)):
        await inject(p, infra, app, HostAccepted, host_id=host["organisation_id"])
        await inject(p, infra, app, GrantCommitted, **committed(total))
        await inject(p, infra, app, GrantAgreementAccepted, accepted_by="v", document_sha256="ab" * 32)
    await inject(p, infra, x, PaymentOrdered, **payment(x, "prefinancing", 77_700), **ORDER)
    await inject(p, infra, x, PaymentSettled, **payment(x, "prefinancing", 77_700))
    path = f"/applications/{x['application_id']}"
    await p.ok("POST", f"{path}/start", {"actual_start": str(start + timedelta(days=1))}, host_token)
    await p.ok("POST", f"{path}/complete", {"actual_end": str(start + timedelta(days=3))}, host_token)
    await p.ok("POST", f"{path}/host-feedback", {"satisfaction": 5}, host_token)
    await p.ok("POST", f"{path}/report", {"summary": "A joint pilot", "outcomes": ["new_collaboration",
                                                                                 "market_opportunity", "fun"],
                                          "satisfaction": 4}, xt)
    await p.ok("POST", f"{path}/report/review", {"accept": True})
    await inject(p, infra, x, CommitmentReduced, released_cents=22_200, total_after_cents=88_800, reason="shorter")
    await inject(p, infra, x, PaymentOrdered, **payment(x, "balance", 11_100), **ORDER)
    await p.ok("POST", f"/applications/{z['application_id']}/no-show", {"reason": "never came"}, host_token)
    await inject(p, infra, z, CommitmentReleased, released_cents=90_000, reason="the visitor never came")
    return {"partnership": partnership, "call": call}


EXPECTED = {
    "exchanges": 4,
    "by_status": {"approved": 1, "cancelled": 1, "rejected": 1, "reported": 1},
    "country_pairs": [{"visitor_country": c, "host_country": "DE", "exchanges": 1} for c in ("BG", "ES", "FR", "IT")],
    "ecosystems": {"digital": 4, "renewable_energy": 4, "tourism": 1},
    "cross_ecosystem_exchanges": 1,  # Y: tourism visitor, digital/renewable host
    "purposes": {"explore_new_markets": 1, "learn_from_other_cluster": 3, "take_up_new_technologies": 1},
    "undertaken_exchanges": 2,  # X and W
    "average_working_days": 4.0,  # X 3 actual, W 5 planned
    "green_travel_share": 0.5,  # X of X, W
    "budget": {"granted_cents": 201_000,  # 111,000 + 90,000 ever granted (issue 13 f: not net of releases)
               "committed_cents": 11_100, "paid_cents": 77_700, "ordered_cents": 88_800, "released_cents": 112_200},
    "decision_hours": {"decided": 4, "median": 0.0, "mean": 1.0},  # three at once (seconds), Y after 4 h
    "reports": {"submitted": 1, "accepted": 1, "changes_requested": 0, "overdue": 0, "balance_blocked": 0,
                "outcomes": {"new_collaboration": 1, "follow_up_project": 0, "technology_taken_up": 0,
                             "market_opportunity": 1},
                "visitor_satisfaction_mean": 4.0, "host_satisfaction_mean": 5.0,
                "satisfaction_distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}},
}


async def test_indicators_match_the_hand_computed_numbers_and_export_as_csv(programme, infra, quiet):
    p = programme
    seeded = await seed(p, infra, quiet)
    result = await p.ok("GET", "/indicators")
    assert {k: v for k, v in result.items() if k != "filters"} == EXPECTED
    by_call = await p.ok("GET", "/indicators", params={"call_id": seeded["call"]["call_id"],
                                                        "partnership_id": seeded["partnership"]["partnership_id"]})
    assert by_call["exchanges"] == 4 and by_call["filters"]["call_id"] == seeded["call"]["call_id"]
    italy = await p.ok("GET", "/indicators", params={"country": "it"})
    assert (italy["exchanges"], italy["by_status"], italy["budget"]["released_cents"]) == (1, {"cancelled": 1}, 90_000)
    tourism = await p.ok("GET", "/indicators", params={"ecosystem": "tourism"})
    assert (tourism["exchanges"], tourism["by_status"]) == (1, {"rejected": 1})
    assert (await p.ok("GET", "/indicators", params={"call_id": "call-none"}))["exchanges"] == 0
    # who may read: the partnership's officers and programme managers
    officer = p.token("grant_officer", subject="olga", partnership_ids=(seeded["partnership"]["partnership_id"],))
    assert (await p.ok("GET", "/indicators", headers=officer))["exchanges"] == 4
    stranger = p.token("grant_officer", subject="otto", partnership_ids=("ptn-other",))
    assert (await p.ok("GET", "/indicators", headers=stranger))["exchanges"] == 0
    assert (await p.get("/indicators", p.token("visitor", subject="visitor-X"))).status_code == 403
    assert (await p.client.get("/indicators")).status_code == 401
    # CSV
    response = await p.get("/indicators.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["indicator", "dimension", "value"]
    for row in (["exchanges", "", "4"], ["country_pairs", "FR->DE", "1"], ["budget", "paid_cents", "77700"],
                ["average_working_days", "", "4.0"], ["reports.outcomes", "market_opportunity", "1"]):
        assert row in rows, row


def png_rows(png: bytes) -> list[bytes]:
    """Decode an 8-bit RGB/RGBA PNG's scanlines with the standard library (filters undone)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                pa, pb, pc = abs(up - corner), abs(left - corner), abs(left + up - 2 * corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def chromium(*args: str, profile: str) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed for the dashboard test and is not at {CHROMIUM} "
                    "(install Debian's chromium package, or set CHROMIUM)")
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args], capture_output=True, timeout=90)


async def test_the_dashboard_renders_its_charts_in_headless_chromium(programme, infra, quiet):
    p = programme
    await seed(p, infra, quiet)
    assert (await p.client.get("/indicators/dashboard")).status_code == 401  # no token, no page

    async def one_time_link() -> str:  # the browser gets a link, never the token
        return p.url + (await p.ok("POST", "/indicators/dashboard/links", status=201))["url"]
    shots = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR", tempfile.gettempdir()))
    shot = shots / f"dashboard-{p.namespace.strip('.') or 'test'}.png"
    url = await one_time_link()
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium("--dump-dom", url, profile=profile)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    html = dom.stdout.decode()
    for chart in ("chart-status", "chart-country-pairs", "chart-ecosystems", "chart-purposes", "chart-green",
                  "chart-budget", "chart-decision", "chart-outcomes", "chart-satisfaction", "chart-reports"):
        assert f'id="{chart}"' in html, chart
    assert html.count("<svg") == 10 and html.count('class="bar"') >= 20 and "FR → DE" in html
    assert (await p.client.get(url, headers={})).status_code == 401  # the link worked once
    url = await one_time_link()
    with tempfile.TemporaryDirectory() as profile:
        run = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url, profile=profile)
    assert run.returncode == 0 and shot.exists(), run.stderr.decode()[-2000:]
    rows = png_rows(shot.read_bytes())
    assert len(rows) == 2000 and len(rows[0]) >= 1280 * 3
    assert len(set(rows)) > 200, "the page is (nearly) blank"
    colours = {bytes(row[i:i + 3]) for row in rows[::10] for i in range(0, len(row), 3 * 7)}
    assert len(colours) > 20, f"only {len(colours)} colours: no charts drawn"
    shutil.copy(shot, Path(tempfile.gettempdir()) / "cx-dashboard-latest.png")

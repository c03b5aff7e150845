"""The grant agreement document (PDF), rendered in memory from the commitment's facts.

Rendering is deterministic (fixed creation date = commitment time), so the SHA-256 announced
in GrantAgreementIssued is the hash of the stored document and can be re-derived.
The built-in Helvetica font keeps the service free of font files; it covers Latin-1, so
other letters are written without their accents (the legal names are also in the events).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fpdf import FPDF

from grants.domain import euros
from cx_shared.lump_sum_rules import LumpSumRuleSet


def agreement_path(application_id: str) -> str:
    return f"/agreements/{application_id}/document"


def render_agreement(*, application_id: str, call_id: str, parties: Mapping[str, str], exchange: Mapping[str, Any],
                     lump_sum: Mapping[str, Any], prefinancing_cents: int, rules: LumpSumRuleSet,
                     issued_at: datetime) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(issued_at)
    pdf.set_title(_latin1(f"Grant agreement {application_id}"))
    pdf.set_author("ClusterXchange grants service")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    _line(pdf, "ClusterXchange - Grant agreement", 10)
    pdf.set_font("Helvetica", size=10)
    _line(pdf, f"Agreement for exchange {application_id}, call {call_id}, issued {issued_at:%Y-%m-%d}")
    _heading(pdf, "1. Parties")
    _line(pdf, f"Visitor (beneficiary): {parties['visitor_legal_name']} ({parties['visitor_country']}), "
               f"organisation {parties['visitor_organisation_id']}")
    _line(pdf, f"Host: {parties['host_legal_name']} ({parties['host_country']}), "
               f"organisation {parties['host_organisation_id']}")
    _heading(pdf, "2. The exchange")
    origin, destination = lump_sum["inputs"]["origin"], lump_sum["inputs"]["destination"]
    _line(pdf, f"From {origin['city']} ({origin['country']}) to {destination['city']} ({destination['country']}), "
               f"{lump_sum['distance_km']} km great-circle distance")
    _line(pdf, f"Planned from {exchange.get('planned_start')} to {exchange.get('planned_end')}: "
               f"{lump_sum['days']} working days in the host country; {lump_sum['travel_mode']} travel")
    _heading(pdf, "3. Lump sum (rule set " + lump_sum["rule_set_version"] + ")")
    band = lump_sum["band"] or "under 10 km"
    _line(pdf, f"Travel lump sum ({band}, {lump_sum['travel_mode']}): {euros(lump_sum['travel_cents'])}")
    _line(pdf, f"Subsistence: {lump_sum['days']} days x {euros(lump_sum['daily_cents'])} "
               f"(host-country {lump_sum['inputs']['host_country_group']}) = {euros(lump_sum['subsistence_cents'])}"
               + (f", capped at {euros(rules.cap_cents)} per exchange" if lump_sum["capped"] else ""))
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, f"Total grant: {euros(lump_sum['total_cents'])}")
    pdf.set_font("Helvetica", size=10)
    _heading(pdf, "4. Payments")
    _line(pdf, f"Pre-financing ({rules.prefinancing_percent}%) on acceptance of this agreement: "
               f"{euros(prefinancing_cents)}")
    _line(pdf, f"Balance on acceptance of the follow-up report: up to "
               f"{euros(lump_sum['total_cents'] - prefinancing_cents)}")
    _heading(pdf, "5. Obligations of the visitor")
    for number, obligation in enumerate(rules.obligations, start=1):
        _line(pdf, f"{number}. {obligation}")
    _heading(pdf, "6. Acceptance")
    _line(pdf, "The visitor accepts this agreement through the ClusterXchange platform; "
               "the acceptance is recorded with its time and author.")
    return bytes(pdf.output())


def sha256(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    _line(pdf, text, 8)
    pdf.set_font("Helvetica", size=10)


def _line(pdf: FPDF, text: str, height: float = 6) -> None:
    pdf.multi_cell(0, height, _latin1(text), new_x="LMARGIN", new_y="NEXT")


def _latin1(text: str) -> str:
    if all(ord(c) < 256 for c in text):
        return text
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return plain.encode("latin-1", "replace").decode("latin-1")


def render_from_commitment(record: Mapping[str, Any], rules: LumpSumRuleSet) -> bytes:
    """The agreement of a stored commitment, byte for byte the one issued at commitment time."""
    return render_agreement(application_id=record["application_id"], call_id=record["call_id"],
                            parties=record["parties"], exchange=record["exchange"], lump_sum=record["lump_sum"],
                            prefinancing_cents=record["prefinancing_cents"], rules=rules,
                            issued_at=datetime.fromisoformat(record["committed_at"]))

"""Who reads which timeline entries, and whose names (pure)."""

from datetime import UTC, datetime

from applications import audience, domain
from applications.audience import Viewer

AT = datetime(2026, 11, 23, tzinfo=UTC)


def entry(name: str, source: str = "assessment", **data) -> dict:
    return domain.timeline_entry(event_id=name, ce_type=f"eu.clusterxchange.{name}.v1",
                                 source=f"/clusterxchange/{source}", at=AT, data=data)


TIMELINE = [
    entry("application.submitted", "applications", visitor={"organisation_id": "org-v", "legal_name": "V",
                                                            "country": "FR"},
          host={"legal_name": "H", "country": "DE"}, planned_start="2027-01-04", planned_end="2027-01-08",
          working_days=5),
    entry("assessment.claimed", assessor="assessor-ann"),
    entry("conflict.declared", assessor="assessor-bob", reason="my cousin runs the host"),
    entry("application.scored", assessor="assessor-ann", score=4.5),
    entry("application.approved", reasons=["score 4.5 above 3"], overridden_by="pm-zoe"),
    entry("grant.refused", "grants", reason="budget", required_cents=1, available_cents=0),
    entry("report.accepted", "applications", accepted_by="pm-zoe", actual_working_days=5),
    entry("host_feedback.submitted", "applications", submitted_by="hans", satisfaction=5),
    entry("email.sent", "notifications", template="approved", recipient_role="visitor"),
    entry("something.new", "elsewhere"),
]
STAFF_NAMES = ("assessor-ann", "assessor-bob", "pm-zoe", "cousin", "4.5 by")


def test_staff_of_the_partnership_read_every_entry_and_every_actor():
    shown = audience.timeline_for(TIMELINE, {Viewer.STAFF})
    assert [e["event"] for e in shown] == [e["event"] for e in TIMELINE]
    assert {e["actor"] for e in shown} >= {"assessor-ann", "pm-zoe"}


def test_the_visitor_reads_its_entries_without_staff_identities():
    shown = audience.timeline_for(TIMELINE, {Viewer.VISITOR})
    assert [e["event"] for e in shown] == ["application.submitted", "application.approved", "report.accepted"]
    assert not [n for n in STAFF_NAMES for e in shown if n in str(e)], shown
    assert shown[1]["actor"] == shown[2]["actor"] == "the partnership"
    assert shown[2]["summary"].startswith("Report accepted by the partnership")


def test_the_host_reads_its_entries_without_staff_identities():
    shown = audience.timeline_for(TIMELINE, {Viewer.HOST})
    assert [e["event"] for e in shown] == ["application.submitted", "application.approved",
                                           "host_feedback.submitted"]
    assert not [n for n in STAFF_NAMES for e in shown if n in str(e)], shown


def test_an_entry_stored_before_its_party_summary_says_only_what_happened():
    old = {k: v for k, v in entry("exchange.closed", "applications", closed_by="pm-zoe").items()
           if k != audience.PARTY_SUMMARY}
    assert audience.timeline_for([old], {Viewer.VISITOR})[0]["summary"] == "Exchange closed"


def test_the_exchange_fields_of_the_other_party_and_the_reviewer_are_hidden():
    doc = {"report": {"summary": "x"}, "host_feedback": {"satisfaction": 2},
           "report_review": {"outcome": "accepted", "by": "pm-zoe"}}
    visitor = audience.exchange_for(doc, {Viewer.VISITOR})
    assert "host_feedback" not in visitor and visitor["report_review"]["by"] == "the partnership"
    host = audience.exchange_for(doc, {Viewer.HOST})
    assert "report" not in host and "report_review" not in host and host["host_feedback"]
    assert audience.exchange_for(doc, {Viewer.STAFF}) == doc


def test_every_contract_about_an_exchange_has_its_audience_decided():
    from cx_shared.events import all_event_classes
    undecided = [cls.name for cls in all_event_classes()
                 if "application_id" in cls.model_fields and cls.name not in audience.AUDIENCE]
    assert undecided == [], f"add these to audience.AUDIENCE (else only staff read them): {undecided}"


def test_a_visitors_export_holds_what_the_visitor_reads_and_nobody_elses_data():
    """Issue 23, finding 2: an export is the subject's data as the subject may read it, not the raw
    documents that name it (staff-only entries, staff names, the host's feedback and contact)."""
    host = {"organisation_id": "org-h", "legal_name": "H", "contact": {"name": "Hans Host", "email": "h@h.example"}}
    exchange = {"_id": "app-1", "visitor_id": "org-v", "host_id": "org-h", "partnership_id": "ptn-1",
                "visitor": {"organisation_id": "org-v", "legal_name": "V", "contact": {"name": "Vera"}}, "host": host,
                "milestones": TIMELINE, "report": {"organisation_id": "org-v", "summary": "my visit"},
                "host_feedback": {"organisation_id": "org-h", "free_text": "a curious visitor"},
                "report_review": {"outcome": "accepted", "by": "pm-zoe"}}
    noted = [{"collection": "timeline", "document": {**e, "_id": e["event_id"], "application_id": "app-1"}}
             for e in TIMELINE]
    found = [{"collection": "organisations", "document": {"_id": "org-v", "contact": {"name": "Vera"}}},
             {"collection": "applications", "document": exchange}, *noted]
    exported = audience.export_for("org-v", found)
    text = str(exported)
    assert "Vera" in text and "my visit" in text, "the subject's own data is there"
    for other in (*STAFF_NAMES, "Hans Host", "h@h.example", "a curious visitor", "email.sent", "grant.refused",
                  "assessment.claimed", "conflict.declared", "application.scored", "something.new"):
        assert other not in text, other
    entries = [d["document"]["event"] for d in exported if d["collection"] == "timeline"]
    assert entries == [e["event"] for e in audience.timeline_for(TIMELINE, {Viewer.VISITOR})]
    as_host = str(audience.export_for("org-h", found[1:]))
    assert "my visit" not in as_host and "Vera" not in as_host and "a curious visitor" in as_host

"""Contracts published by the applications service on cx.applications.v1."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from cx_shared.events import Event
from cx_shared.events.common import Contact, Participant
from cx_shared.topics import APPLICATIONS
from cx_shared.vocabulary import Ecosystem, OrganisationType, Purpose, TravelMode


class OrganisationEnrolled(Event, name="organisation.enrolled", topic=APPLICATIONS):
    organisation_id: str
    revision: int = 1
    roles: list[str]
    legal_name: str
    country: str
    city: str
    organisation_type: OrganisationType
    subtype: str | None = None
    cluster_name: str | None = None
    ecosystems: list[Ecosystem] = Field(default_factory=list)
    contact: Contact
    owner: str | None = None  # the subject (token sub) that enrolled it: it may act for the organisation


class OrganisationUpdated(OrganisationEnrolled, name="organisation.updated", topic=APPLICATIONS):
    pass


class CallPublished(Event, name="call.published", topic=APPLICATIONS):
    call_id: str
    partnership_id: str
    title: str
    opens_on: date
    closes_on: date
    eligible_countries: list[str]
    budget_cents: int = Field(ge=0)
    assessment_mode: str = "automatic"  # "automatic" (eligible = approved, first come) or "panel"
    eligibility_rule_set: str = "default-v1"
    lump_sum_rule_set: str = "default-v1"
    contact_email: str | None = None
    exchanges_end_on: date | None = None  # last day an exchange may end; default: closes_on
    report_due_days: int = Field(default=30, ge=1)  # the visitor reports within this many days of the actual end


class ApplicationSubmitted(Event, name="application.submitted", topic=APPLICATIONS):
    application_id: str
    call_id: str
    partnership_id: str
    offer_id: str | None = None
    visitor: Participant
    host: Participant
    purposes: list[Purpose]
    objectives: str = ""
    planned_start: date
    planned_end: date
    working_days: int = Field(ge=0, description="working days in the host country, its public holidays excluded")
    travel_mode: TravelMode = TravelMode.STANDARD
    ecosystems: list[Ecosystem] = Field(default_factory=list)
    submitted_at: datetime
    # Each side's own ecosystems (the snapshots do not carry them): tells ecosystems crossed.
    visitor_ecosystems: list[Ecosystem] = Field(default_factory=list)
    host_ecosystems: list[Ecosystem] = Field(default_factory=list)


class ApplicationWithdrawn(Event, name="application.withdrawn", topic=APPLICATIONS):
    application_id: str
    call_id: str
    reason: str = ""
    withdrawn_by: str | None = None  # the subject (token sub) who withdrew it


# Added by the applications service (additive: optional fields and new contracts only).

class PartnershipFormed(Event, name="partnership.formed", topic=APPLICATIONS):
    partnership_id: str
    partnership_name: str  # not `name`: that is the contract's own class attribute
    member_clusters: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    ecosystems: list[Ecosystem] = Field(default_factory=list)
    contact_email: str | None = None


class OfferPublished(Event, name="offer.published", topic=APPLICATIONS):
    """A host's exchange opportunity: the window in which it can receive visitors, and how many at once."""

    offer_id: str
    host_id: str
    title: str
    description: str = ""
    ecosystem: Ecosystem
    window_start: date
    window_end: date
    capacity: int = Field(ge=1)
    language: str = "en"
    country: str = ""
    city: str = ""


class ApplicationCancelled(Event, name="application.cancelled", topic=APPLICATIONS):
    """The programme cancelled an exchange (e.g. the host can no longer receive the visitor)."""

    application_id: str
    call_id: str
    reason: str
    cancelled_by: str | None = None


class ExchangeStarted(Event, name="exchange.started", topic=APPLICATIONS):
    """The host confirmed the visitor arrived."""

    application_id: str
    call_id: str
    confirmed_by: str
    actual_start: date | None = None  # the day the visitor actually arrived


class ExchangeCompleted(Event, name="exchange.completed", topic=APPLICATIONS):
    """The host confirmed the visit ended."""

    application_id: str
    call_id: str
    confirmed_by: str
    actual_start: date | None = None
    actual_end: date | None = None
    actual_working_days: int | None = None  # in the host country, its public holidays excluded
    planned_working_days: int | None = None
    report_due_on: date | None = None  # actual end + the call's report_due_days


class ReportSubmitted(Event, name="report.submitted", topic=APPLICATIONS):
    """The visitor's report after the exchange (what was learnt, what follows)."""

    application_id: str
    call_id: str
    submitted_by: str
    summary: str
    outcomes: list[str] = Field(default_factory=list)
    # Structured answers (optional for older producers). outcomes may name the programme's
    # kinds: new_collaboration, follow_up_project, technology_taken_up, market_opportunity.
    learnt: str = ""
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    free_text: str = ""
    late: bool = False  # submitted after the due date (ReportOverdue was raised)


class ExchangeClosed(Event, name="exchange.closed", topic=APPLICATIONS):
    """The partnership closed the file (after the report, or after a rejection)."""

    application_id: str
    call_id: str
    closed_by: str
    reason: str = ""


# Preparation, follow-up and evaluation (issue 7).

class PreparationUpdated(Event, name="preparation.updated", topic=APPLICATIONS):
    """The visitor ticked off (part of) the preparation checklist after signing the agreement."""

    application_id: str
    call_id: str
    updated_by: str
    travel_booked: bool = False
    insurance: bool = False
    agenda_agreed: bool = False
    ready: bool = False  # every item is ticked


class ExchangeNoShow(Event, name="exchange.no_show", topic=APPLICATIONS):
    """The host reports that the visitor never came: the exchange is cancelled, its grant released."""

    application_id: str
    call_id: str
    reported_by: str
    reason: str = ""


class HostFeedbackSubmitted(Event, name="host_feedback.submitted", topic=APPLICATIONS):
    """The host's feedback on a completed exchange."""

    application_id: str
    call_id: str
    submitted_by: str
    satisfaction: int = Field(ge=1, le=5)
    free_text: str = ""


class ReportAccepted(Event, name="report.accepted", topic=APPLICATIONS):
    """The partnership accepted the visitor's report: grants pays the balance from these figures
    (reduced by its rule when the exchange was shorter than planned)."""

    application_id: str
    call_id: str
    accepted_by: str
    actual_start: date
    actual_end: date
    actual_working_days: int = Field(ge=0)
    planned_working_days: int = Field(ge=0)


class ReportChangesRequested(Event, name="report.changes_requested", topic=APPLICATIONS):
    """The partnership asks the visitor to change the report and submit it again."""

    application_id: str
    call_id: str
    requested_by: str
    reasons: list[str] = Field(min_length=1)


class ReportOverdue(Event, name="report.overdue", topic=APPLICATIONS):
    """No report by its due date: escalated to the partnership, and the balance is blocked
    until a (late) report is accepted."""

    application_id: str
    call_id: str
    due_on: date
    detected_on: date

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


class ExchangeCompleted(Event, name="exchange.completed", topic=APPLICATIONS):
    """The host confirmed the visit ended."""

    application_id: str
    call_id: str
    confirmed_by: str


class ReportSubmitted(Event, name="report.submitted", topic=APPLICATIONS):
    """The visitor's report after the exchange (what was learnt, what follows)."""

    application_id: str
    call_id: str
    submitted_by: str
    summary: str
    outcomes: list[str] = Field(default_factory=list)


class ExchangeClosed(Event, name="exchange.closed", topic=APPLICATIONS):
    """The partnership closed the file (after the report, or after a rejection)."""

    application_id: str
    call_id: str
    closed_by: str
    reason: str = ""

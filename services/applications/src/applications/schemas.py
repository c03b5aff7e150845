"""Request bodies of the HTTP API. Types and vocabularies are checked here (a wrong one is a
422 naming the field); the programme's rules across fields live in rules.py."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from cx_shared.vocabulary import DEFAULT_ELIGIBLE_COUNTRIES, Ecosystem, OrganisationType, Purpose, TravelMode

Text = Field(min_length=1, max_length=300)


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ContactIn(Strict):
    name: str = Text
    email: EmailStr
    phone: str | None = Field(default=None, max_length=40)
    language: str = "en"


class OrganisationIn(Strict):
    legal_name: str = Text
    country: str = Field(min_length=2, max_length=2)
    city: str = Text
    organisation_type: OrganisationType
    subtype: str | None = None
    cluster_name: str | None = Field(default=None, max_length=300)
    ecosystems: list[Ecosystem] = Field(min_length=1)
    roles: list[Literal["visitor", "host"]] = Field(min_length=1)
    contact: ContactIn


class OrganisationPatch(Strict):
    """A change to an enrolment; `revision` is the one the change was made against."""

    revision: int = Field(ge=1)
    legal_name: str | None = Field(default=None, min_length=1, max_length=300)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    city: str | None = Field(default=None, min_length=1, max_length=300)
    organisation_type: OrganisationType | None = None
    subtype: str | None = None
    cluster_name: str | None = None
    ecosystems: list[Ecosystem] | None = Field(default=None, min_length=1)
    roles: list[Literal["visitor", "host"]] | None = Field(default=None, min_length=1)
    contact: ContactIn | None = None


class PartnershipIn(Strict):
    name: str = Text
    member_clusters: list[str] = Field(min_length=1)
    countries: list[str] = Field(min_length=1)
    ecosystems: list[Ecosystem] = Field(default_factory=list)
    contact_email: EmailStr | None = None


class CallIn(Strict):
    partnership_id: str = Text
    title: str = Text
    opens_on: date
    closes_on: date
    exchanges_end_on: date | None = None
    eligible_countries: list[str] = Field(default_factory=lambda: list(DEFAULT_ELIGIBLE_COUNTRIES), min_length=1)
    budget_cents: int = Field(ge=0)
    assessment_mode: Literal["automatic", "panel"] = "automatic"
    eligibility_rule_set: str = "default-v1"
    lump_sum_rule_set: str = "default-v1"
    contact_email: EmailStr | None = None
    report_due_days: int = Field(default=30, ge=1, le=365)


class OfferIn(Strict):
    host_id: str = Text
    title: str = Text
    description: str = Field(default="", max_length=5000)
    ecosystem: Ecosystem
    window_start: date
    window_end: date
    capacity: int = Field(ge=1, le=100)
    language: str = "en"


class ApplicationIn(Strict):
    call_id: str = Text
    visitor_id: str = Text
    host_id: str = Text
    offer_id: str | None = None
    purposes: list[Purpose] = Field(min_length=1)
    objectives: str = Field(min_length=1, max_length=5000)
    planned_start: date
    planned_end: date
    travel_mode: TravelMode = TravelMode.STANDARD


class ReasonIn(Strict):
    reason: str = Field(default="", max_length=2000)


class ReportIn(Strict):
    """The visitor's report: what was learnt, outcomes (the programme's kinds: new_collaboration,
    follow_up_project, technology_taken_up, market_opportunity; or its own words), satisfaction 1-5."""

    summary: str = Field(min_length=1, max_length=10000)
    outcomes: list[str] = Field(default_factory=list, max_length=50)
    learnt: str = Field(default="", max_length=10000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    free_text: str = Field(default="", max_length=10000)


class PreparationIn(Strict):
    travel_booked: bool = False
    insurance: bool = False
    agenda_agreed: bool = False


class ArrivalIn(Strict):
    actual_start: date | None = None  # default: the planned start


class DepartureIn(Strict):
    actual_end: date | None = None  # default: the planned end


class HostFeedbackIn(Strict):
    satisfaction: int = Field(ge=1, le=5)
    free_text: str = Field(default="", max_length=10000)


class ReviewIn(Strict):
    """The partnership's review of a report: accept, or ask for changes with the reasons."""

    accept: bool
    reasons: list[str] = Field(default_factory=list, max_length=20)

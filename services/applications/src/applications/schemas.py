"""Request bodies of the HTTP API. Types, vocabularies and bounds are checked here (a wrong one
is a 422 naming the field and the rule); the programme's rules across fields live in rules.py.

Every string and list has an upper bound, declared in the OpenAPI document: a request can
never grow an event past what the broker takes (cx_shared.outbox checks that too).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator
from pydantic_core import PydanticCustomError

from cx_shared.http import ID_PATTERN, IdFilter, IdPath  # noqa: F401 (the API imports them from here)
from cx_shared.http import Day  # 2020-01-01 to 2099-12-31, declared in the OpenAPI document as enforced
from cx_shared.vocabulary import (DEFAULT_ELIGIBLE_COUNTRIES, Ecosystem, OrganisationType, Purpose, RegionCategory,
                                  TravelMode)

# One line of text, or prose (tabs and line breaks allowed): never other control characters
# (a NUL cannot even be stored by the local database).
LINE, PROSE = r"^[^\x00-\x1f\x7f]*$", r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ID = ID_PATTERN  # what the programme's ids are made of (org-…, call-…, UUIDs)
Text = Annotated[str, Field(min_length=1, max_length=300, pattern=LINE)]
OptionalText = Annotated[str, Field(max_length=300, pattern=LINE)]
Prose = Annotated[str, Field(max_length=10000, pattern=PROSE)]
Id = Annotated[str, Field(min_length=1, max_length=100, pattern=ID)]
Country = Annotated[str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$",
                               description="ISO 3166-1 alpha-2 (XK for Kosovo)")]
Language = Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")]
CountryFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")]


def _unique(items: list) -> list:
    if len(set(items)) != len(items):
        raise PydanticCustomError("unique_items", "each item may be named once")
    return items


def unique_list(item: type, *, min_length: int = 1, max_length: int = 20):
    """A list of a vocabulary's values, each at most once (refused, not silently merged)."""
    return Annotated[list[item], Field(min_length=min_length, max_length=max_length,
                                       json_schema_extra={"uniqueItems": True}), AfterValidator(_unique)]


Ecosystems = unique_list(Ecosystem, max_length=len(Ecosystem))
Roles = unique_list(Literal["visitor", "host"], max_length=2)


def _refuse_null(cls, value):
    """A patch's field that cannot be cleared: left out it stays, null is refused."""
    if value is None:
        raise PydanticCustomError("not_null", "leave the field out to keep it; it cannot be null")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ContactIn(Strict):
    name: Text
    email: EmailStr = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=40, pattern=LINE)
    language: Language = "en"


class OrganisationIn(Strict):
    legal_name: Text
    country: Country
    city: Text
    organisation_type: OrganisationType
    subtype: Text | None = None
    cluster_name: OptionalText | None = None
    ecosystems: Ecosystems
    roles: Roles
    contact: ContactIn


class OrganisationPatch(Strict):
    """A change to an enrolment; `revision` is the one the change was made against. A field
    left out stays as it is; only `subtype` and `cluster_name` may be cleared with null."""

    revision: int = Field(ge=1, le=2**31)
    legal_name: Text | None = None
    country: Country | None = None
    city: Text | None = None
    organisation_type: OrganisationType | None = None
    subtype: Text | None = None
    cluster_name: OptionalText | None = None
    ecosystems: Ecosystems | None = None
    roles: Roles | None = None
    contact: ContactIn | None = None

    _not_null = field_validator("legal_name", "country", "city", "organisation_type", "ecosystems", "roles",
                                "contact")(_refuse_null)


class MemberIn(Strict):
    """A legal entity of the consortium: where it is established, and its region's category."""

    legal_name: Text
    country: Country
    region_category: RegionCategory


Members = Annotated[list[MemberIn], Field(min_length=1, max_length=100)]
PartnershipEcosystems = unique_list(Ecosystem, min_length=0, max_length=len(Ecosystem))


class PartnershipIn(Strict):
    """A partnership's consortium: the consortium rule (at least 3 legal entities in at least 3
    eligible countries, one in a less developed or in transition region) is checked on its members."""

    name: Text
    members: Members
    ecosystems: PartnershipEcosystems = Field(default_factory=list)
    contact_email: EmailStr | None = Field(default=None, max_length=254)


class PartnershipPatch(Strict):
    """A change to a partnership made against `revision`; a field left out stays as it is."""

    revision: int = Field(ge=1, le=2**31)
    name: Text | None = None
    members: Members | None = None
    ecosystems: PartnershipEcosystems | None = None
    contact_email: EmailStr | None = Field(default=None, max_length=254)

    _not_null = field_validator("name", "members", "ecosystems")(_refuse_null)


# A partnership's id as a membership names it (a key of the organisation's memberships: no dot).
PartnershipKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_:-]+$")]
PartnershipKeyPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_:-]+$")]


class MembershipIn(Strict):
    """The partnership an organisation joins (its own act)."""

    partnership_id: PartnershipKey


class CallIn(Strict):
    partnership_id: Id
    title: Text
    opens_on: Day
    closes_on: Day
    exchanges_end_on: Day | None = None
    eligible_countries: Annotated[list[Country], Field(min_length=1, max_length=60,
                                                       json_schema_extra={"uniqueItems": True}),
                                  AfterValidator(_unique)] = Field(
        default_factory=lambda: list(DEFAULT_ELIGIBLE_COUNTRIES))
    budget_cents: int = Field(ge=0, le=10**13)
    assessment_mode: Literal["automatic", "panel"] = "automatic"
    eligibility_rule_set: Id = "default-v1"
    lump_sum_rule_set: Id = "default-v1"
    contact_email: EmailStr | None = Field(default=None, max_length=254)
    report_due_days: int = Field(default=30, ge=1, le=365)


class CallPatch(Strict):
    """A change to a call before it opens, made against `revision`; a field left out stays as it is
    (`exchanges_end_on`: null clears it, exchanges then end by the closing day). Any other field
    (its partnership, assessment mode, rule sets) is refused, not ignored: it cannot change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    revision: int = Field(ge=1, le=2**31)
    title: Text | None = None
    opens_on: Day | None = None
    closes_on: Day | None = None
    exchanges_end_on: Day | None = None
    eligible_countries: Annotated[list[Country], Field(min_length=1, max_length=60,
                                                       json_schema_extra={"uniqueItems": True}),
                                  AfterValidator(_unique)] | None = None
    budget_cents: int | None = Field(default=None, ge=0, le=10**13)
    contact_email: EmailStr | None = Field(default=None, max_length=254)
    report_due_days: int | None = Field(default=None, ge=1, le=365)

    _not_null = field_validator("title", "opens_on", "closes_on", "eligible_countries", "budget_cents",
                                "report_due_days")(_refuse_null)


class OfferIn(Strict):
    host_id: Id
    title: Text
    description: Annotated[str, Field(max_length=5000, pattern=PROSE)] = ""
    ecosystem: Ecosystem
    window_start: Day
    window_end: Day
    capacity: int = Field(ge=1, le=100, description="visitors received at the same time (overlapping exchanges)")
    language: Language = "en"


class OfferPatch(Strict):
    """A change to an offer made against `revision`; a field left out stays as it is."""

    revision: int = Field(ge=1, le=2**31)
    title: Text | None = None
    description: Annotated[str, Field(max_length=5000, pattern=PROSE)] | None = None
    ecosystem: Ecosystem | None = None
    window_start: Day | None = None
    window_end: Day | None = None
    capacity: int | None = Field(default=None, ge=1, le=100,
                                 description="visitors received at the same time (overlapping exchanges)")
    language: Language | None = None

    _not_null = field_validator("title", "description", "ecosystem", "window_start", "window_end", "capacity",
                                "language")(_refuse_null)


class ApplicationIn(Strict):
    call_id: Id
    visitor_id: Id
    host_id: Id
    offer_id: Id | None = None
    purposes: unique_list(Purpose, max_length=len(Purpose))
    objectives: Annotated[str, Field(min_length=1, max_length=5000, pattern=PROSE)]
    planned_start: Day
    planned_end: Day
    travel_mode: TravelMode = TravelMode.STANDARD


class ReasonIn(Strict):
    reason: Annotated[str, Field(max_length=2000, pattern=PROSE)] = ""


class ReportIn(Strict):
    """The visitor's report: what was learnt, outcomes (the programme's kinds: new_collaboration,
    follow_up_project, technology_taken_up, market_opportunity; or its own words), satisfaction 1-5."""

    summary: Annotated[Prose, Field(min_length=1)]
    outcomes: list[Text] = Field(default_factory=list, max_length=50)
    learnt: Prose = ""
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    free_text: Prose = ""


class PreparationIn(Strict):
    travel_booked: bool = False
    insurance: bool = False
    agenda_agreed: bool = False


class ArrivalIn(Strict):
    actual_start: Day | None = None  # default: the planned start


class DepartureIn(Strict):
    actual_end: Day | None = None  # default: the planned end


class HostFeedbackIn(Strict):
    satisfaction: int = Field(ge=1, le=5)
    free_text: Prose = ""


class ReviewIn(Strict):
    """The partnership's review of a report: accept, or ask for changes with the reasons."""

    accept: bool
    reasons: list[Annotated[str, Field(max_length=2000, pattern=PROSE)]] = Field(default_factory=list, max_length=20)


class ErasureIn(Strict):
    """The data subject: the organisation whose contact person is to be erased."""

    subject_id: Id

"""Contracts published by the applications service on cx.applications.v1.

Every free text and list is bounded (the API's bounds, or wider), so no event of these
contracts can outgrow what the broker takes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from cx_shared.events import Event
from cx_shared.events.common import Contact, ErasureReport, ExportPart, Participant, Party
from cx_shared.topics import APPLICATIONS
from cx_shared.vocabulary import Ecosystem, OrganisationType, Purpose, RegionCategory, TravelMode

Id = Annotated[str, Field(max_length=100)]
Line = Annotated[str, Field(max_length=300)]  # a name, a title, a city
Prose = Annotated[str, Field(max_length=10000)]
Reason = Annotated[str, Field(max_length=2000)]
Subject = Annotated[str, Field(max_length=200)]  # a token's subject: who acted
Ecosystems = Annotated[list[Ecosystem], Field(max_length=len(Ecosystem))]
# A report's texts as JSON, sealed: three proses and 50 lines, each character at most six once
# JSON-escaped, in base64.
SealedTexts = Annotated[str, Field(max_length=400_000, description=(
    "the texts (JSON: the clear version's text fields) AES-256-GCM under the key of subject organisation_id "
    "on cx.personal_data_keys.v1: `aes256gcm:` + base64(nonce + ciphertext)"))]
Countries = Annotated[list[Annotated[str, Field(max_length=2)]], Field(max_length=100)]


class Organisation(Event):
    """What every version of an organisation's enrolment says, but its contact person."""

    organisation_id: Id
    revision: int = 1
    roles: list[Annotated[str, Field(max_length=10)]] = Field(max_length=2)
    legal_name: Line
    country: str = Field(max_length=2)
    city: Line
    organisation_type: OrganisationType
    subtype: Line | None = None
    cluster_name: Line | None = None
    ecosystems: Ecosystems = Field(default_factory=list)


class OrganisationEnrolled(Organisation, name="organisation.enrolled", topic=APPLICATIONS):
    contact: Contact
    owner: Subject | None = None  # the subject (token sub) that enrolled it: it may act for the organisation


class OrganisationUpdated(OrganisationEnrolled, name="organisation.updated", topic=APPLICATIONS):
    pass


class OrganisationEnrolledV2(Organisation, name="organisation.enrolled", version=2, topic=APPLICATIONS):
    """The enrolment with its contact person sealed under the organisation's data key (crypto-shredding:
    erasing the key makes every copy unreadable). Only the services that read the keys topic open it."""

    contact_sealed: Annotated[str, Field(max_length=4000, description=(
        "the contact person (name, email, phone, language) as JSON, AES-256-GCM under the key of subject "
        "organisation_id on cx.personal_data_keys.v1: `aes256gcm:` + base64(nonce + ciphertext)"))]
    owner: Subject | None = None


class OrganisationUpdatedV2(OrganisationEnrolledV2, name="organisation.updated", version=2, topic=APPLICATIONS):
    pass


# Membership (issue 23): an organisation belongs to the partnerships it joined. Keyed by the
# organisation's id, so they follow its enrolment's events. An application makes no membership.

class MembershipJoined(Event, name="membership.joined", topic=APPLICATIONS):
    """An organisation joined a partnership by its own act (its owner or its token's organisation):
    from now on that partnership's programme managers may act for it (its enrolment, offers,
    personal-data requests) and its staff read its contact person. A later version may need the
    partnership's validation first (a requested state); this one is a member at once."""

    organisation_id: Id
    partnership_id: Id
    joined_by: Subject
    joined_at: datetime


class MembershipLeft(Event, name="membership.left", topic=APPLICATIONS):
    """An organisation left a partnership by its own act: its managers act for it no more."""

    organisation_id: Id
    partnership_id: Id
    left_by: Subject
    left_at: datetime


class CallPublished(Event, name="call.published", topic=APPLICATIONS):
    call_id: Id
    partnership_id: Id
    title: Line
    opens_on: date
    closes_on: date
    eligible_countries: Countries
    budget_cents: int = Field(ge=0)
    assessment_mode: Line = "automatic"  # "automatic" (eligible = approved, first come) or "panel"
    eligibility_rule_set: Line = "default-v1"
    lump_sum_rule_set: Line = "default-v1"
    contact_email: Line | None = None
    exchanges_end_on: date | None = None  # last day an exchange may end; default: closes_on
    report_due_days: int = Field(default=30, ge=1)  # the visitor reports within this many days of the actual end
    revision: int = 1  # one more with each change made before the call opens (call.updated)


class CallUpdated(CallPublished, name="call.updated", topic=APPLICATIONS):
    """The partnership changed its call before it opened (title, dates, eligible countries, budget,
    contact, report days): its whole state, one revision later. Nobody could apply before the call
    opened, so nothing was reserved or committed against the old budget. ``budget_change_cents``
    is the change of the call's own budget from the previous revision: a service whose budget also
    holds top-ups applies this difference, once per revision."""

    budget_change_cents: int = Field(default=0, ge=-(10**13), le=10**13)
    updated_by: Subject | None = None


class CallClosed(Event, name="call.closed", topic=APPLICATIONS):
    """The partnership closed its call before its closing day: no application is accepted any more."""

    call_id: Id
    partnership_id: Id
    closed_on: date
    reason: Reason = ""
    closed_by: Subject | None = None


class CallCancelled(Event, name="call.cancelled", topic=APPLICATIONS):
    """The partnership cancelled its call: no application is accepted any more, and every exchange
    of it not yet granted is cancelled (each an application.cancelled, which releases what it holds)."""

    call_id: Id
    partnership_id: Id
    reason: Reason = ""
    cancelled_by: Subject | None = None


class ApplicationSubmitted(Event, name="application.submitted", topic=APPLICATIONS):
    application_id: Id
    call_id: Id
    partnership_id: Id
    offer_id: Id | None = None
    visitor: Participant
    host: Participant
    purposes: list[Purpose] = Field(max_length=len(Purpose))
    objectives: Prose = ""
    planned_start: date
    planned_end: date
    working_days: int = Field(ge=0, description="working days in the host country, its public holidays excluded")
    travel_mode: TravelMode = TravelMode.STANDARD
    ecosystems: Ecosystems = Field(default_factory=list)
    submitted_at: datetime
    # Each side's own ecosystems (the snapshots do not carry them): tells ecosystems crossed.
    visitor_ecosystems: Ecosystems = Field(default_factory=list)
    host_ecosystems: Ecosystems = Field(default_factory=list)


class ApplicationSubmittedV2(ApplicationSubmitted, name="application.submitted", version=2, topic=APPLICATIONS):
    """The submission without the parties' contact persons (minimised): no consumer needs them from
    here; notifications mails the contacts it keeps from the enrolment events."""

    visitor: Party
    host: Party


class ApplicationWithdrawn(Event, name="application.withdrawn", topic=APPLICATIONS):
    application_id: Id
    call_id: Id
    reason: Reason = ""
    withdrawn_by: Subject | None = None  # the subject (token sub) who withdrew it


# Added by the applications service (additive: optional fields and new contracts only).

class ConsortiumMember(BaseModel):
    """A legal entity of a partnership's consortium, where it is established."""

    legal_name: Line
    country: str = Field(max_length=2)
    region_category: RegionCategory


class PartnershipFormed(Event, name="partnership.formed", topic=APPLICATIONS):
    partnership_id: Id
    partnership_name: Line  # not `name`: that is the contract's own class attribute
    member_clusters: list[Line] = Field(default_factory=list, max_length=100)  # the members' names
    countries: Countries = Field(default_factory=list)  # the members' countries
    ecosystems: Ecosystems = Field(default_factory=list)
    contact_email: Line | None = None
    members: list[ConsortiumMember] = Field(default_factory=list, max_length=100)
    revision: int = 1


class PartnershipUpdated(PartnershipFormed, name="partnership.updated", topic=APPLICATIONS):
    """The partnership as it is after a change (its whole state, one revision later)."""


class OfferPublished(Event, name="offer.published", topic=APPLICATIONS):
    """A host's exchange opportunity: the window in which it can receive visitors, and how many at once.

    ``capacity`` is how many visitors the host receives at the same time through this offer: exchanges
    whose dates overlap share its places, exchanges on other dates of the window take them again.
    Applications refuses a submission overlapping that many live ones; assessment's host_capacity rule
    refuses an approval overlapping that many places held (approved or host-accepted), in any call."""

    offer_id: Id
    host_id: Id
    title: Line
    description: Prose = ""
    ecosystem: Ecosystem
    window_start: date
    window_end: date
    capacity: int = Field(ge=1, description="visitors received at the same time (overlapping exchanges)")
    language: str = Field(default="en", max_length=10)
    country: str = Field(default="", max_length=2)
    city: Line = ""
    revision: int = 1


class OfferUpdated(OfferPublished, name="offer.updated", topic=APPLICATIONS):
    """The host changed its offer (window, capacity, description...): its whole state, one revision later.
    Exchanges already accepted through it stay; the new capacity counts for the next ones."""


class OfferWithdrawn(Event, name="offer.withdrawn", topic=APPLICATIONS):
    """The host withdrew its offer: no new application may go through it (those made stay)."""

    offer_id: Id
    host_id: Id
    reason: Reason = ""
    withdrawn_by: Subject | None = None
    revision: int = 1


class ApplicationCancelled(Event, name="application.cancelled", topic=APPLICATIONS):
    """The programme cancelled an exchange (e.g. the host can no longer receive the visitor)."""

    application_id: Id
    call_id: Id
    reason: Reason
    cancelled_by: Subject | None = None


class ExchangeStarted(Event, name="exchange.started", topic=APPLICATIONS):
    """The host confirmed the visitor arrived."""

    application_id: Id
    call_id: Id
    confirmed_by: Subject
    actual_start: date | None = None  # the day the visitor actually arrived


class ExchangeCompleted(Event, name="exchange.completed", topic=APPLICATIONS):
    """The host confirmed the visit ended."""

    application_id: Id
    call_id: Id
    confirmed_by: Subject
    actual_start: date | None = None
    actual_end: date | None = None
    actual_working_days: int | None = None  # in the host country, its public holidays excluded
    planned_working_days: int | None = None
    report_due_on: date | None = None  # actual end + the call's report_due_days


class Report(Event):
    """What every version of the visitor's report says in clear: its structured answers."""

    application_id: Id
    call_id: Id
    submitted_by: Subject
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    late: bool = False  # submitted after the due date (ReportOverdue was raised)


class ReportSubmitted(Report, name="report.submitted", topic=APPLICATIONS):
    """The visitor's report after the exchange (what was learnt, what follows), its texts in clear."""

    organisation_id: Id | None = None  # the visitor organisation that wrote it (None from older producers)
    summary: Prose
    outcomes: list[Line] = Field(default_factory=list, max_length=50)
    # Structured answers (optional for older producers). outcomes may name the programme's
    # kinds: new_collaboration, follow_up_project, technology_taken_up, market_opportunity.
    learnt: Prose = ""
    free_text: Prose = ""


class ReportSubmittedV2(Report, name="report.submitted", version=2, topic=APPLICATIONS):
    """The report with its texts (summary, learnt, free text, outcomes) sealed under the visitor
    organisation's data key (crypto-shredding: erasing the key makes every copy unreadable); the
    outcomes that name the programme's kinds travel in clear too. Only the services that read the
    keys topic open it."""

    organisation_id: Id
    outcome_kinds: list[Annotated[str, Field(max_length=30)]] = Field(default_factory=list, max_length=4)
    texts_sealed: SealedTexts


class ExchangeClosed(Event, name="exchange.closed", topic=APPLICATIONS):
    """The partnership closed the file (after the report, or after a rejection)."""

    application_id: Id
    call_id: Id
    closed_by: Subject
    reason: Reason = ""


# Preparation, follow-up and evaluation (issue 7).

class PreparationUpdated(Event, name="preparation.updated", topic=APPLICATIONS):
    """The visitor ticked off (part of) the preparation checklist after signing the agreement."""

    application_id: Id
    call_id: Id
    updated_by: Subject
    travel_booked: bool = False
    insurance: bool = False
    agenda_agreed: bool = False
    ready: bool = False  # every item is ticked


class ExchangeNoShow(Event, name="exchange.no_show", topic=APPLICATIONS):
    """The host reports that the visitor never came: the exchange is cancelled, its grant released."""

    application_id: Id
    call_id: Id
    reported_by: Subject
    reason: Reason = ""


class HostFeedback(Event):
    """What every version of the host's feedback says in clear."""

    application_id: Id
    call_id: Id
    submitted_by: Subject
    satisfaction: int = Field(ge=1, le=5)


class HostFeedbackSubmitted(HostFeedback, name="host_feedback.submitted", topic=APPLICATIONS):
    """The host's feedback on a completed exchange, its free text in clear."""

    organisation_id: Id | None = None  # the host organisation that wrote it (None from older producers)
    free_text: Prose = ""


class HostFeedbackSubmittedV2(HostFeedback, name="host_feedback.submitted", version=2, topic=APPLICATIONS):
    """The host's feedback with its free text sealed under the host organisation's data key."""

    organisation_id: Id
    texts_sealed: SealedTexts


class ReportAccepted(Event, name="report.accepted", topic=APPLICATIONS):
    """The partnership accepted the visitor's report: grants pays the balance from these figures
    (reduced by its rule when the exchange was shorter than planned)."""

    application_id: Id
    call_id: Id
    accepted_by: Subject
    actual_start: date
    actual_end: date
    actual_working_days: int = Field(ge=0)
    planned_working_days: int = Field(ge=0)


class ReportChangesRequested(Event, name="report.changes_requested", topic=APPLICATIONS):
    """The partnership asks the visitor to change the report and submit it again."""

    application_id: Id
    call_id: Id
    requested_by: Subject
    reasons: list[Reason] = Field(min_length=1, max_length=20)


class ReportOverdue(Event, name="report.overdue", topic=APPLICATIONS):
    """No report by its due date: escalated to the partnership, and the balance is blocked
    until a (late) report is accepted."""

    application_id: Id
    call_id: Id
    due_on: date
    detected_on: date


# Personal data (issue 15): erasure of a data subject, an organisation's contact person, named
# by the organisation's id. Keyed by that id, so it follows the organisation's own events.

class PersonalDataErased(Event, name="personal_data.erased", topic=APPLICATIONS):
    """Erase the contact person of an organisation everywhere: every service removes or
    anonymises what it holds of them, keeps a tombstone, and reports back."""

    erasure_id: Id
    subject_id: Id = Field(description="the organisation whose contact person is erased")
    requested_by: Subject
    requested_at: datetime


class ApplicationsErasureReported(ErasureReport, name="personal_data.erasure_reported.applications",
                                  topic=APPLICATIONS):
    """What applications erased of the subject (organisations, exchanges' snapshots and timelines)."""


class PersonalDataExportRequested(Event, name="personal_data.export_requested", topic=APPLICATIONS):
    """Everything every service holds about a subject, asked for (GDPR art. 15 and 20): each service
    answers with its part, sealed under the subject's key."""

    export_id: Id
    subject_id: Id = Field(description="the organisation whose contact person's data is exported")
    requested_by: Subject
    requested_at: datetime


class ApplicationsExported(ExportPart, name="personal_data.exported.applications", topic=APPLICATIONS):
    """What applications holds of the subject (its organisation, exchanges and their timelines)."""

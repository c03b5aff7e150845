"""Value objects that several contracts carry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from cx_shared.events import Event
from cx_shared.vocabulary import OrganisationType


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    email: EmailStr
    phone: str | None = None
    language: str = "en"


class Party(BaseModel):
    """A visitor or host organisation as it stood when the event happened, without its contact
    person: what consumers need (the contact is fed to those who mail it by the enrolment events)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    organisation_id: str
    legal_name: str
    country: str
    city: str
    organisation_type: OrganisationType
    subtype: str | None = None
    cluster_name: str | None = None


class Participant(Party):
    """A snapshot of a visitor or host organisation as it stood when the event happened,
    so consumers need not call back into the applications service."""

    contact: Contact


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    rule: str
    passed: bool
    reason: str


class Kept(BaseModel):
    """Something a service keeps of an erased subject, and why (a legal obligation, say)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    what: str = Field(max_length=300)
    why: str = Field(max_length=2000)


class ErasureReport(Event):
    """A service's answer to personal_data.erased: when it erased what it held of the subject,
    what it removed and what it kept and why. Each service publishes its own contract of this
    shape on its own topic (personal_data.erasure_reported.<service>)."""

    erasure_id: str = Field(max_length=100)
    subject_id: str = Field(max_length=100, description="the organisation whose contact person was erased")
    service: str = Field(max_length=30)
    erased_at: datetime
    removed: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=50)
    kept: list[Kept] = Field(default_factory=list, max_length=50)


class ExportPart(Event):
    """A service's answer to personal_data.export_requested: every document it holds of the subject,
    as JSON sealed under the subject's data key (it travels on a topic; applications opens it). Each
    service publishes its own contract of this shape on its own topic (personal_data.exported.<service>)."""

    export_id: str = Field(max_length=100)
    subject_id: str = Field(max_length=100, description="the organisation whose contact person asked")
    service: str = Field(max_length=30)
    exported_at: datetime
    part_sealed: str = Field(max_length=200_000, description=(
        "a list of {collection, document} as JSON, AES-256-GCM under the subject's key (cx.personal_data_keys.v1); "
        "empty when the subject was erased before the export was answered"))

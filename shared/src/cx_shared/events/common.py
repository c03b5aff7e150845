"""Value objects that several contracts carry."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr

from cx_shared.vocabulary import OrganisationType


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    email: EmailStr
    phone: str | None = None
    language: str = "en"


class Participant(BaseModel):
    """A snapshot of a visitor or host organisation as it stood when the event happened,
    so consumers need not call back into the applications service."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    organisation_id: str
    legal_name: str
    country: str
    city: str
    organisation_type: OrganisationType
    subtype: str | None = None
    cluster_name: str | None = None
    contact: Contact


class RuleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    rule: str
    passed: bool
    reason: str

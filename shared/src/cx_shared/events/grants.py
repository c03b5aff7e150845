"""Contracts published by the grants service on cx.grants.v1 (and the finance system's
confirmations it consumes on cx.finance.v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from cx_shared.events import Event
from cx_shared.events.common import ErasureReport, ExportPart
from cx_shared.topics import FINANCE, GRANTS

# Free text is bounded, so no event comes near the broker's message limit: grants clips the
# reasons it composes from other services' text to REASON_MAX.
REASON_MAX, REFERENCE_MAX = 2000, 200
Reason = Annotated[str, Field(max_length=REASON_MAX)]
Reference = Annotated[str, Field(max_length=REFERENCE_MAX)]


class GrantCommitted(Event, name="grant.committed", topic=GRANTS):
    application_id: str
    call_id: str
    travel_cents: int = Field(ge=0)
    subsistence_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0)
    rule_set_version: str
    available_after_cents: int = Field(ge=0)
    # Optional explanation of the amount (added later; older consumers ignore them).
    distance_km: int | None = None
    distance_band: str | None = None
    travel_mode: str | None = None
    working_days: int | None = None
    capped: bool = False
    visitor_organisation_id: str | None = None


class GrantRefused(Event, name="grant.refused", topic=GRANTS):
    application_id: str
    call_id: str
    reason: Reason
    required_cents: int = 0
    available_cents: int = 0


class CommitmentReleased(Event, name="commitment.released", topic=GRANTS):
    application_id: str
    call_id: str
    released_cents: int = Field(ge=0)
    reason: Reason
    # Added later (absent on older events): the officer who cancelled the grant by hand.
    released_by: str | None = None


# Added later to the events a report's acceptance orders (absent on older events): who accepted
# it (an officer, or the service whose event it followed) and the working days it reported.
AcceptedBy = Annotated[str | None, Field(None, description="who accepted the report this follows from")]
ActualWorkingDays = Annotated[int | None, Field(None, ge=0, description="the working days the accepted report gave")]


class CommitmentReduced(Event, name="commitment.reduced", topic=GRANTS):
    """Part of a commitment returned to the budget (e.g. a shorter exchange than planned);
    the exchange goes on, unlike CommitmentReleased."""

    application_id: str
    call_id: str
    released_cents: int = Field(ge=0)
    total_after_cents: int = Field(ge=0)
    reason: Reason
    accepted_by: AcceptedBy = None
    actual_working_days: ActualWorkingDays = None


class BudgetOpened(Event, name="budget.opened", topic=GRANTS):
    call_id: str
    partnership_id: str
    budget_cents: int = Field(ge=0)
    rule_set_version: str


class BudgetToppedUp(Event, name="budget.topped_up", topic=GRANTS):
    call_id: str
    amount_cents: int = Field(gt=0)
    budget_after_cents: int = Field(ge=0)
    available_after_cents: int = Field(ge=0)
    reason: Reason = ""
    # Added later (absent on older events): who topped it up, and the request's Idempotency-Key
    # (a retry with it adds nothing; a rebuild keeps the top-up under it).
    topped_up_by: str | None = None
    idempotency_key: str | None = Field(None, max_length=100)


class GrantAgreementIssued(Event, name="grant_agreement.issued", topic=GRANTS):
    application_id: str
    call_id: str
    visitor_organisation_id: str
    total_cents: int = Field(ge=0)
    prefinancing_cents: int = Field(ge=0)
    document_sha256: str
    document_path: str = Field(description="path of the PDF on the grants API")


class GrantAgreementAccepted(Event, name="grant_agreement.accepted", topic=GRANTS):
    application_id: str
    call_id: str
    accepted_by: str
    document_sha256: str


class PaymentOrdered(Event, name="payment.ordered", topic=GRANTS):
    """An order for the partnership's finance system to pay the visitor; it answers with
    PaymentConfirmed on cx.finance.v1 carrying the same payment_id."""

    payment_id: str
    application_id: str
    call_id: str
    kind: str  # "prefinancing" or "balance"
    amount_cents: int = Field(ge=0)
    payee_organisation_id: str
    payee_legal_name: str
    payee_country: str
    accepted_by: AcceptedBy = None  # a balance: the report's acceptance
    actual_working_days: ActualWorkingDays = None


class PaymentSettled(Event, name="payment.settled", topic=GRANTS):
    """The finance system confirmed a payment order; the money left the budget."""

    payment_id: str
    application_id: str
    call_id: str
    kind: str
    amount_cents: int = Field(ge=0)
    finance_reference: Reference = ""


class PaymentConfirmed(Event, name="payment.confirmed", topic=FINANCE):
    """Published by the partnership's finance system once it executed a PaymentOrdered."""

    payment_id: str
    application_id: str
    call_id: str
    amount_cents: int = Field(ge=0)
    finance_reference: Reference = ""
    executed_at: datetime | None = None


class GrantsErasureReported(ErasureReport, name="personal_data.erasure_reported.grants", topic=GRANTS):
    """What grants erased of the subject (no contact data: commitments, agreements and ledger stay)."""


class GrantsExported(ExportPart, name="personal_data.exported.grants", topic=GRANTS):
    """What grants holds of the subject."""

"""Contracts published by the grants service on cx.grants.v1 (and the finance system's
confirmations it consumes on cx.finance.v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

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
    # Added later (absent on older events): the officer who cancelled the grant by hand, and the
    # second officer who verified that cancellation (four eyes).
    released_by: str | None = None
    verified_by: str | None = None


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
    verified_by: str | None = None  # added later: the second officer who verified the balance (four eyes)


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
    verified_by: str | None = None  # added later: the second officer who verified it (four eyes)


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
    # Added later (absent on older events and on a pre-financing): the second officer who verified
    # a balance initiated by the report's acceptance (four eyes). The finance system pays a
    # balance only with it.
    verified_by: str | None = None


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


# Four eyes (issue 23): a balance payment, a top-up and a cancellation by hand are initiated by
# one officer and verified by another officer of the same partnership (the EU's financial rules
# separate the initiating agent from the verifying one). Every step is an event naming who.
ActionKind = Literal["balance_payment", "top_up", "cancellation"]


class FourEyesAction(Event):
    action_id: str
    kind: ActionKind
    call_id: str
    partnership_id: str
    application_id: str | None = None  # a balance payment or a cancellation: the exchange
    amount_cents: int | None = Field(None, ge=0)  # a balance payment or a top-up: the amount at stake


class ActionInitiated(FourEyesAction, name="action.initiated", topic=GRANTS):
    """An officer (or the partnership's report review) initiated an action; it waits for another
    officer's verification until `expires_at`."""

    initiated_by: str
    expires_at: datetime
    reason: Reason = ""
    supersedes: str | None = None  # an expired action of the same kind and subject it replaces


class ActionVerified(FourEyesAction, name="action.verified", topic=GRANTS):
    """A second officer verified the action: it takes effect (its own events follow)."""

    initiated_by: str
    verified_by: str


class ActionRejected(FourEyesAction, name="action.rejected", topic=GRANTS):
    """An officer rejected (or the initiator withdrew) the action: nothing changes."""

    initiated_by: str
    rejected_by: str
    reason: Reason = ""


class GrantsErasureReported(ErasureReport, name="personal_data.erasure_reported.grants", topic=GRANTS):
    """What grants erased of the subject (no contact data: commitments, agreements and ledger stay)."""


class GrantsExported(ExportPart, name="personal_data.exported.grants", topic=GRANTS):
    """What grants holds of the subject."""

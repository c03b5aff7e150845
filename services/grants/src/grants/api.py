"""HTTP API of the grants service: thin (HTTP -> domain -> storage), authenticated, authorised.

Grant officers and programme managers of a call's partnership manage its budget and see its
commitments, payments, ledger and reconciliation; a visitor sees and accepts only the
agreement and payments of its own organisation's exchanges.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from cx_shared.auth import Principal, principal, require_role
from cx_shared.errors import Conflict, Forbidden, Invalid, NotFound
from cx_shared.events.grants import BudgetOpened
from cx_shared.envelope import as_request
from cx_shared.http import emit
from cx_shared.vocabulary import Role, TravelMode

from cx_shared.geography import UnknownCity, locate

from grants import domain
from grants.budgeting import act_on_budget, act_on_exchange
from grants.domain import BALANCES, Cause
from cx_shared.lump_sums import Location, LumpSumError, compute_lump_sum
from cx_shared.lump_sum_rules import UnknownRuleSet, rule_set
from grants.storage import REFUSED, Storage
from grants.use_cases import ensure_agreement, release, subject_of

router = APIRouter(tags=["grants"])
OFFICERS = (Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER)
Who = Annotated[Principal, Depends(principal)]


# --- schemas ---------------------------------------------------------------------------------

# Ids are the platform's own (``app-1a2b...``, ``call-...``): anything else is a 422, before it
# reaches the database (which cannot even hold some characters, such as NUL).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
ID = Path(min_length=1, max_length=100, pattern=ID_PATTERN)
ApplicationId = Annotated[str, ID]
CallId = Annotated[str, ID]
IdempotencyKey = Annotated[str | None, Header(max_length=100, pattern=ID_PATTERN)]
# Free text: bounded, and without NUL (the database refuses it).
REASON_MAX, NAME_MAX = 1000, 200
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX, pattern=r"^[^\x00]*$")]
Name = Annotated[str, Field(max_length=NAME_MAX, pattern=r"^[^\x00]*$")]
# Amounts fit the database's 64-bit integers with a wide margin (ten billion euros).
MAX_CENTS = 10**12
# No exchange lasts longer than a month; a year bounds every count of working days.
MAX_WORKING_DAYS = 366


class BudgetCreate(BaseModel):
    call_id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN,
                         description="a call grants knows from call.published")
    partnership_id: str = Field(min_length=1, max_length=NAME_MAX, description="the call's partnership")
    budget_cents: int = Field(ge=0, le=MAX_CENTS)
    lump_sum_rule_set: str = Field("default-v1", max_length=64)
    title: Name = ""


class TopUp(BaseModel):
    amount_cents: int = Field(gt=0, le=MAX_CENTS)
    reason: Reason


class Cancellation(BaseModel):
    reason: Reason


class ReportAcceptance(BaseModel):
    actual_working_days: int = Field(ge=0, le=MAX_WORKING_DAYS, description="working days the exchange actually lasted")


class BudgetView(BaseModel):
    call_id: str
    partnership_id: str
    title: str = ""
    rule_set_version: str
    budget_cents: int
    available_cents: int
    committed_cents: int
    paid_cents: int


# --- helpers ---------------------------------------------------------------------------------

def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def cause_of(request: Request, who: Principal) -> Cause:
    return Cause(actor=who.subject, at=datetime.now(UTC), request_id=getattr(request.state, "correlation_id", None))


def wrap_for(request: Request, cause: Cause, request_id: str):
    """The request's events, at the time its change is stamped with: the first records the request
    under `request_id` (as_request), so a rebuild makes it again, at the same time, under that cause."""
    return lambda change: as_request([emit(request, ev, subject_of(ev)) for ev in change.events], request_id,
                                     cause.at)


def request_cause() -> str:
    """What a change made by one HTTP request is remembered by (a retry is a new request): the
    id its first event will carry."""
    return str(uuid.uuid4())


async def budget_for_officer(request: Request, who: Principal, call_id: str, *extra_roles: Role) -> dict[str, Any]:
    require_role(who, *OFFICERS, *extra_roles)
    doc = await storage_of(request).view(call_id)
    if doc is None:
        raise NotFound(f"no budget for call {call_id}")
    if not who.in_partnership(doc["partnership_id"]):
        raise Forbidden(f"call {call_id} belongs to another partnership")
    return doc


async def commitment_for(request: Request, who: Principal, application_id: str, *,
                         visitor_allowed: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The budget and commitment of an exchange, if the caller may see them."""
    storage = storage_of(request)
    outcome = await storage.commitment(application_id)
    committed = outcome is not None and outcome["record"] is not None and outcome["state"] != REFUSED
    doc = await storage.view(outcome["call_id"]) if committed else None
    if doc is None:
        raise NotFound(f"no grant for exchange {application_id}")
    record = outcome["record"]
    own = (visitor_allowed and who.has(Role.VISITOR) and who.organisation_id is not None
           and who.organisation_id == record["parties"]["visitor_organisation_id"])
    if not own and not (who.has(*OFFICERS) and who.in_partnership(doc["partnership_id"])):
        raise Forbidden("only the visitor of this exchange and its partnership's grant officers may do this")
    return doc, record


def budget_view(doc: dict[str, Any]) -> BudgetView:
    return BudgetView(**{k: doc.get(k) for k in ("call_id", "partnership_id", "rule_set_version", *BALANCES)},
                      title=doc.get("title", ""))


def payments_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**p, "application_id": record["application_id"], "call_id": record["call_id"]}
            for p in record.get("payments", {}).values()]


# --- budgets ---------------------------------------------------------------------------------

async def call_for_officer(request: Request, who: Principal, call_id: str, partnership_id: str) -> dict[str, Any]:
    """A call known from call.published, whose partnership the caller works for and the body names."""
    require_role(who, *OFFICERS)
    call = await storage_of(request).call(call_id)
    if call is None:
        raise NotFound(f"call {call_id} is not known to grants (no call.published seen)")
    if not who.in_partnership(call["partnership_id"]):
        raise Forbidden(f"call {call_id} belongs to another partnership")
    if partnership_id != call["partnership_id"]:
        raise Conflict(f"call {call_id} belongs to partnership {call['partnership_id']}, not {partnership_id}",
                       field="partnership_id", rule="the call's partnership")
    return call


@router.post("/budgets", status_code=201)
async def create_budget(body: BudgetCreate, request: Request, who: Who) -> BudgetView:
    """Open a budget by hand for a call known from call.published, by its partnership's officers
    (call.published opens one itself, so this is 409 unless that opening has not happened)."""
    await call_for_officer(request, who, body.call_id, body.partnership_id)
    try:
        rule_set(body.lump_sum_rule_set)
    except UnknownRuleSet as exc:
        raise Invalid(str(exc), field="lump_sum_rule_set", rule="known rule set") from None
    cause = cause_of(request, who)
    budget, opening = domain.opening(body.call_id, body.partnership_id, body.budget_cents, body.lump_sum_rule_set,
                                     cause, "budget opened by hand")
    opened = BudgetOpened(call_id=body.call_id, partnership_id=body.partnership_id, budget_cents=body.budget_cents,
                          rule_set_version=body.lump_sum_rule_set)
    storage = storage_of(request)
    if not await storage.open_budget(budget, opening, title=body.title, events=[emit(request, opened, body.call_id)]):
        raise Conflict(f"call {body.call_id} already has a budget; top it up instead")
    return budget_view(await storage.view(body.call_id))


@router.get("/budgets")
async def list_budgets(request: Request, who: Principal = Depends(principal)) -> list[BudgetView]:
    require_role(who, *OFFICERS)
    everything = who.programme_wide
    storage = storage_of(request)
    calls = await storage.calls_of(None if everything else who.partnership_ids)
    return [budget_view(await storage.view(call_id)) for call_id in calls]


@router.get("/calls/{call_id}/budget")
async def get_budget(call_id: CallId, request: Request, who: Who) -> BudgetView:
    return budget_view(await budget_for_officer(request, who, call_id, Role.ASSESSOR))


@router.post("/calls/{call_id}/budget/top-ups")
async def top_up(call_id: CallId, body: TopUp, request: Request, who: Who,
                 idempotency_key: IdempotencyKey = None) -> BudgetView:
    """Add money to a call's budget. Send an Idempotency-Key header to make a retry safe."""
    await budget_for_officer(request, who, call_id)
    cause = cause_of(request, who)
    storage = storage_of(request)
    key = idempotency_key or uuid.uuid4().hex
    await act_on_budget(storage, call_id, key, lambda b: domain.top_up(b, body.amount_cents, cause, body.reason, key),
                        wrap_for(request, cause, request_cause()), cause=f"top-up:{key}")
    return budget_view(await storage.view(call_id))


@router.get("/calls/{call_id}/commitments")
async def list_commitments(call_id: CallId, request: Request, who: Who) -> list[dict]:
    await budget_for_officer(request, who, call_id)
    return await storage_of(request).commitments(call_id)


@router.get("/calls/{call_id}/payments")
async def list_payments(call_id: CallId, request: Request, who: Who) -> list[dict]:
    await budget_for_officer(request, who, call_id)
    return [p for record in await storage_of(request).commitments(call_id) for p in payments_of(record)]


@router.get("/calls/{call_id}/ledger")
async def ledger(call_id: CallId, request: Request, who: Who) -> list[dict]:
    await budget_for_officer(request, who, call_id)
    return (await storage_of(request).ledger(call_id))[0]


@router.get("/calls/{call_id}/reconciliation")
async def reconciliation(call_id: CallId, request: Request, who: Who) -> dict[str, Any]:
    """Replays the ledger alone and proves budget = available + committed + paid."""
    budget = await budget_for_officer(request, who, call_id)
    entries, recorded = await storage_of(request).ledger(call_id)
    result = domain.reconcile(call_id, entries, recorded)
    # The budget's balances (what decisions are made on) must agree with the ledger too.
    folded = {k: budget[k] for k in BALANCES}
    if folded != {k: result[k] for k in BALANCES}:
        result["problems"].append(f"the budget's state {folded} differs from the ledger")
        result["balanced"] = False
    return result


# --- commitments -----------------------------------------------------------------------------

@router.get("/commitments/{application_id}")
async def get_commitment(application_id: ApplicationId, request: Request, who: Who) -> dict:
    _, record = await commitment_for(request, who, application_id, visitor_allowed=True)
    return record


@router.post("/commitments/{application_id}/cancellation")
async def cancel_commitment(application_id: ApplicationId, body: Cancellation, request: Request,
                            who: Who) -> dict:
    """Cancel an exchange's grant: the unspent commitment returns to the budget (once)."""
    doc, _ = await commitment_for(request, who, application_id, visitor_allowed=False)
    cause = cause_of(request, who)
    storage = storage_of(request)
    request_id = request_cause()
    if not await release(storage, doc["call_id"], application_id, f"cancelled: {body.reason}", cause,
                         wrap_for(request, cause, request_id), event_id=request_id, by_hand=True):
        raise Conflict(f"the commitment of {application_id} is not open (already released?)")
    return (await commitment_for(request, who, application_id, visitor_allowed=False))[1]


@router.post("/commitments/{application_id}/report-acceptance")
async def accept_report(application_id: ApplicationId, body: ReportAcceptance, request: Request,
                        who: Who) -> dict:
    """The follow-up report is accepted by hand: order the balance (reduced for a shorter exchange).
    The applications service's ReportAccepted event does the same; whichever comes first wins."""
    doc, _ = await commitment_for(request, who, application_id, visitor_allowed=False)
    rules = rule_set(doc["rule_set_version"])
    cause, request_id = cause_of(request, who), request_cause()
    await act_on_exchange(
        storage_of(request), doc["call_id"], application_id,
        lambda b: domain.accept_report(b, application_id, body.actual_working_days, rules, cause),
        wrap_for(request, cause, request_id), cause=request_id)
    return (await commitment_for(request, who, application_id, visitor_allowed=False))[1]


# --- agreements and payments (visitors see their own) -----------------------------------------

@router.get("/agreements/{application_id}")
async def get_agreement(application_id: ApplicationId, request: Request, who: Who) -> dict:
    _, record = await commitment_for(request, who, application_id, visitor_allowed=True)
    return {"application_id": application_id, "call_id": record["call_id"], **record["agreement"],
            "total_cents": record["amount_cents"], "prefinancing_cents": record["prefinancing_cents"],
            "parties": record["parties"], "lump_sum": record["lump_sum"]}


@router.get("/agreements/{application_id}/document")
async def agreement_document(application_id: ApplicationId, request: Request, who: Who) -> Response:
    await commitment_for(request, who, application_id, visitor_allowed=True)
    document = await ensure_agreement(storage_of(request), application_id)
    return Response(document, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="grant-agreement-{application_id}.pdf"'})


@router.post("/agreements/{application_id}/acceptance")
async def accept_agreement(application_id: ApplicationId, request: Request, who: Who) -> dict:
    """The visitor accepts its grant agreement; the pre-financing is ordered."""
    require_role(who, Role.VISITOR)
    doc, _ = await commitment_for(request, who, application_id, visitor_allowed=True)
    cause, request_id = cause_of(request, who), request_cause()
    await act_on_exchange(
        storage_of(request), doc["call_id"], application_id,
        lambda b: domain.accept_agreement(b, application_id, who.organisation_id, cause),
        wrap_for(request, cause, request_id), cause=request_id)
    return await get_agreement(application_id, request, who)


@router.get("/exchanges/{application_id}/payments")
async def exchange_payments(application_id: ApplicationId, request: Request, who: Who) -> list[dict]:
    _, record = await commitment_for(request, who, application_id, visitor_allowed=True)
    return payments_of(record)


# --- lump sums before enrolment ---------------------------------------------------------------

@router.get("/lump-sums/quote")
async def quote(request: Request, who: Who, from_city: Annotated[str, Query(max_length=NAME_MAX)],
                from_country: Annotated[str, Query(min_length=2, max_length=2)],
                to_city: Annotated[str, Query(max_length=NAME_MAX)],
                to_country: Annotated[str, Query(min_length=2, max_length=2)],
                working_days: int = Query(ge=0, le=MAX_WORKING_DAYS), travel_mode: TravelMode = TravelMode.STANDARD,
                rule_set_version: str = Query("default-v1", max_length=64)) -> dict:
    """What an exchange would receive; an unknown city is a 422 naming it (usable at enrolment)."""
    try:
        rules = rule_set(rule_set_version)
    except UnknownRuleSet as exc:
        raise Invalid(str(exc), field="rule_set_version", rule="known rule set") from None
    places = []
    for field_, city, country in (("from_city", from_city, from_country), ("to_city", to_city, to_country)):
        try:
            p = locate(city, country)
        except UnknownCity as exc:
            raise Invalid(str(exc), field=field_, rule="known city") from None
        places.append(Location(p.name, p.country, p.latitude, p.longitude))
    try:
        return compute_lump_sum(rules, places[0], places[1], working_days, travel_mode).as_record()
    except LumpSumError as exc:
        raise Invalid(str(exc), field="to_country", rule="country group") from None


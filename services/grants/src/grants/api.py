"""HTTP API of the grants service: thin (HTTP -> domain -> storage), authenticated, authorised.

Grant officers and programme managers of a call's partnership (roles held in that partnership:
require_role_in / has_in) manage its budget and see its commitments, payments, ledger and
reconciliation; a visitor sees and accepts only the agreement and payments of its own
organisation's exchanges. A balance payment, a top-up and a cancellation are initiated by one
officer and verified by another (four_eyes.py): only the verification moves money.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from cx_shared.auth import Principal, principal, require_role, require_role_in
from cx_shared.errors import Conflict, Forbidden, Invalid, NotFound
from cx_shared.events.grants import BudgetOpened
from cx_shared.envelope import as_request
from cx_shared.http import emit
from cx_shared.vocabulary import Role, TravelMode

from cx_shared.geography import UnknownCity, locate

from grants import domain, four_eyes
from grants.budgeting import act_on_budget, act_on_exchange
from grants.domain import BALANCES, Cause
from cx_shared.lump_sums import Location, LumpSumError, compute_lump_sum
from cx_shared.lump_sum_rules import UnknownRuleSet, rule_set
from grants.storage import REFUSED, Storage
from grants.use_cases import effect_id, ensure_agreement, initiate, initiate_balance, release, reject, subject_of, verify

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
    amount_cents: int = Field(gt=0, le=four_eyes.TOP_UP_MAX_CENTS,
                              description="at most EUR 100,000 per top-up; verified by a second officer")
    reason: Reason


class Cancellation(BaseModel):
    reason: Reason


class Rejection(BaseModel):
    reason: Reason


ActionId = Annotated[str, ID]
LEDGER_PAGE_MAX, ACTIONS_MAX = 1000, 200


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
    """The call's budget, if the caller holds an officer's role (or one of `extra_roles`) in its partnership."""
    require_role(who, *OFFICERS, *extra_roles)
    doc = await storage_of(request).view(call_id)
    if doc is None:
        raise NotFound(f"no budget for call {call_id}")
    require_role_in(who, doc["partnership_id"], *OFFICERS, *extra_roles)
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
    if not own and not who.has_in(doc["partnership_id"], *OFFICERS):
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
    require_role_in(who, call["partnership_id"], *OFFICERS)
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
    calls = await storage.calls_of(None if everything else who.partnerships_with(*OFFICERS))
    return [budget_view(await storage.view(call_id)) for call_id in calls]


@router.get("/calls/{call_id}/budget")
async def get_budget(call_id: CallId, request: Request, who: Who) -> BudgetView:
    return budget_view(await budget_for_officer(request, who, call_id, Role.ASSESSOR))


@router.post("/calls/{call_id}/budget/top-ups", status_code=202)
async def top_up(call_id: CallId, body: TopUp, request: Request, who: Who,
                 idempotency_key: IdempotencyKey = None) -> dict:
    """Initiate a top-up of a call's budget (at most EUR 100,000): another officer of the
    partnership verifies it (`POST /actions/{action_id}/verification`), and only then is the money
    added. Send an Idempotency-Key header to make a retry safe (it names the action)."""
    budget = await budget_for_officer(request, who, call_id)
    four_eyes.check_top_up(body.amount_cents)
    cause = cause_of(request, who)
    action_id = f"act-{idempotency_key or uuid.uuid4().hex}"
    return await initiate(
        storage_of(request), four_eyes.slot(four_eyes.TOP_UP, call_id),
        lambda current: four_eyes.initiate(four_eyes.TOP_UP, action_id=action_id, call_id=call_id,
                                           partnership_id=budget["partnership_id"], initiator=who.subject,
                                           at=cause.at, current=current, amount_cents=body.amount_cents,
                                           reason=body.reason),
        wrap_for(request, cause, request_cause()), action_id)


@router.get("/calls/{call_id}/commitments")
async def list_commitments(call_id: CallId, request: Request, who: Who) -> list[dict]:
    await budget_for_officer(request, who, call_id)
    return await storage_of(request).commitments(call_id)


@router.get("/calls/{call_id}/payments")
async def list_payments(call_id: CallId, request: Request, who: Who) -> list[dict]:
    await budget_for_officer(request, who, call_id)
    return [p for record in await storage_of(request).commitments(call_id) for p in payments_of(record)]


@router.get("/calls/{call_id}/ledger")
async def ledger(call_id: CallId, request: Request, response: Response, who: Who,
                 after_seq: Annotated[int, Query(ge=0, le=MAX_CENTS, description="entries after this seq")] = 0,
                 limit: Annotated[int, Query(ge=1, le=LEDGER_PAGE_MAX)] = 100) -> list[dict]:
    """A page of the call's ledger in order: the entries after `after_seq`, at most `limit`; a
    `Link: <...>; rel="next"` header names the next page while one may follow. The
    reconciliation replays the whole ledger itself."""
    await budget_for_officer(request, who, call_id)
    entries = (await storage_of(request).ledger(call_id, after_seq, limit))[0]
    if len(entries) == limit:
        response.headers["link"] = f'<{request.url.path}?after_seq={entries[-1]["seq"]}&limit={limit}>; rel="next"'
    return entries


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


@router.post("/commitments/{application_id}/cancellation", status_code=202)
async def cancel_commitment(application_id: ApplicationId, body: Cancellation, request: Request,
                            who: Who) -> dict:
    """Initiate the cancellation of an exchange's grant; once another officer verifies it, the
    unspent commitment returns to the budget (once)."""
    doc, record = await commitment_for(request, who, application_id, visitor_allowed=False)
    four_eyes.check_no_conflict(officer(who), record["parties"])
    if record["state"] != "committed":
        raise Conflict(f"the commitment of {application_id} is not open (already released?)", field="commitment",
                       rule="committed")
    cause, action_id = cause_of(request, who), f"act-{uuid.uuid4().hex}"
    return await initiate(
        storage_of(request), four_eyes.slot(four_eyes.CANCELLATION, application_id),
        lambda current: four_eyes.initiate(four_eyes.CANCELLATION, action_id=action_id, call_id=doc["call_id"],
                                           partnership_id=doc["partnership_id"], initiator=who.subject, at=cause.at,
                                           current=current, application_id=application_id,
                                           amount_cents=domain.releasable(record), reason=body.reason),
        wrap_for(request, cause, request_cause()), action_id)


@router.post("/commitments/{application_id}/report-acceptance", status_code=202)
async def accept_report(application_id: ApplicationId, request: Request, who: Who) -> dict:
    """Initiate the balance payment again from the report the partnership's review accepted
    (report.accepted initiates it in the reviewer's name; this is for one rejected or expired).
    The working days are the accepted report's, never the caller's; another officer verifies."""
    _, record = await commitment_for(request, who, application_id, visitor_allowed=False)
    four_eyes.check_no_conflict(officer(who), record["parties"])
    cause = cause_of(request, who)
    return await initiate_balance(storage_of(request), application_id, who.subject, cause.at,
                                  action_id=f"act-{uuid.uuid4().hex}", wrap=wrap_for(request, cause, request_cause()))


# --- four eyes: actions awaiting a second officer ----------------------------------------------

def officer(who: Principal) -> four_eyes.Officer:
    return four_eyes.Officer(who.subject, who.organisation_id)


async def action_for_officer(request: Request, who: Principal, action_id: str) -> dict[str, Any]:
    """An action, if the caller holds an officer's role in its partnership."""
    require_role(who, *OFFICERS)
    action = await storage_of(request).action_by_id(action_id)
    if action is None:
        raise NotFound(f"no action {action_id}")
    require_role_in(who, action["partnership_id"], *OFFICERS)
    return action


@router.get("/calls/{call_id}/actions")
async def list_actions(call_id: CallId, request: Request, who: Who,
                       limit: Annotated[int, Query(ge=1, le=ACTIONS_MAX)] = 50) -> list[dict]:
    """The call's latest actions (one per kind and subject), newest first: pending, verified,
    rejected or expired."""
    await budget_for_officer(request, who, call_id)
    now = datetime.now(UTC)
    return [four_eyes.view(a, now) for a in await storage_of(request).actions_of(call_id, limit)]


@router.get("/actions/{action_id}")
async def get_action(action_id: ActionId, request: Request, who: Who) -> dict:
    action = await action_for_officer(request, who, action_id)
    return four_eyes.view({k: v for k, v in action.items() if k not in ("_id", "rev")}, datetime.now(UTC))


@router.post("/actions/{action_id}/verification")
async def verify_action(action_id: ActionId, request: Request, who: Who) -> dict:
    """A second officer of the partnership verifies the action, which then takes effect: the
    balance is ordered, the top-up added, the commitment released. The initiator cannot verify
    (403), nor an officer of the visitor's or host's organisation; an expired, rejected or
    already verified action is a 409."""
    action = await action_for_officer(request, who, action_id)
    cause = cause_of(request, who)
    done = await verify(storage_of(request), action, officer(who), cause.at,
                        wrap_for(request, cause, request_cause()), lambda a: take_effect(request, a))
    return await get_action(done["action_id"], request, who)


@router.post("/actions/{action_id}/rejection")
async def reject_action(action_id: ActionId, body: Rejection, request: Request, who: Who) -> dict:
    """Any officer of the partnership rejects a pending action (its initiator withdraws it): nothing changes."""
    action = await action_for_officer(request, who, action_id)
    cause = cause_of(request, who)
    await reject(storage_of(request), action, who.subject, body.reason, cause.at,
                 wrap_for(request, cause, request_cause()))
    return await get_action(action_id, request, who)


async def take_effect(request: Request, action: dict[str, Any]) -> None:
    """What a verified action does, once (under its `effect_id`), in the initiator's name with
    the verifier on its events."""
    storage, kind, verifier = storage_of(request), action["kind"], action["verified_by"]
    change_id = effect_id(action["action_id"])
    cause = Cause(actor=action["initiated_by"], at=datetime.now(UTC),
                  request_id=getattr(request.state, "correlation_id", None))  # as a rebuild makes it again
    wrap = wrap_for(request, cause, change_id)
    if kind == four_eyes.TOP_UP:
        key = action["action_id"]
        await act_on_budget(storage, action["call_id"], key,
                            lambda b: domain.top_up(b, action["amount_cents"], cause, action["reason"], key, verifier),
                            wrap, cause=f"top-up:{key}")
    elif kind == four_eyes.CANCELLATION:
        await release(storage, action["call_id"], action["application_id"], f"cancelled: {action['reason']}", cause,
                      wrap, event_id=change_id, by_hand=True, verified_by=verifier)
    else:
        budget = await storage.view(action["call_id"])
        rules, days, app = rule_set(budget["rule_set_version"]), action["params"]["actual_working_days"], \
            action["application_id"]
        await act_on_exchange(storage, action["call_id"], app,
                              lambda b: domain.accept_report(b, app, days, rules, cause, verifier), wrap,
                              cause=change_id)


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


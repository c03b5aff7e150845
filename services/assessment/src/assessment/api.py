"""HTTP in: assessors (queue, claim, conflicts, scores), programme managers (rule sets,
rounds, overrides), hosts (accept or decline), visitors (appeal). Thin: every action is
a call-book method applied through workflow.act_on_call, with the entries it needs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cx_shared.auth import Principal, principal, require_role
from cx_shared.errors import Forbidden, NotFound
from cx_shared.http import emit
from cx_shared.vocabulary import Role

from assessment.domain import APPEALED, QUEUED, SCORED, WAITLISTED, Assessor, CallBook, Entry
from assessment.storage import Storage, book_of, committed, plain
from assessment.workflow import Action, Needs, act_on_call

router = APIRouter(tags=["assessment"])
STAFF = (Role.PROGRAMME_MANAGER, Role.ASSESSOR)
Who = Annotated[Principal, Depends(principal)]


class RuleSpec(BaseModel):
    rule: str
    params: dict[str, Any] = Field(default_factory=dict)


class RuleSetChange(BaseModel):
    rules: list[RuleSpec] | None = Field(None, description="the whole rule list of the new version; omitted: unchanged")
    criteria: dict[str, int] | None = Field(None, description="scoring criteria and their weights")
    second_assessor: bool | None = None
    score_gap: float | None = Field(None, ge=0, description="scores further apart than this need one more assessor")
    threshold: float | None = Field(None, ge=0, le=100, description="below this score an application is rejected")


class ScoreSheet(BaseModel):
    scores: dict[str, int] = Field(description="criterion -> 0..10")
    comment: str = ""


class Reasoned(BaseModel):
    reason: str = Field(min_length=1)


class HostDecision(BaseModel):
    accept: bool
    reason: str = ""


class Override(BaseModel):
    decision: Literal["approved", "waitlisted", "rejected"]
    justification: str = Field(description="mandatory: why the manager departs from the assessment")


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def in_request(request: Request):
    return lambda event, subject: emit(request, event, subject)


async def call_of_application(storage: Storage, application_id: str) -> str:
    doc = await storage.submission(application_id)
    if doc is None:
        raise NotFound(f"application {application_id} is not known to assessment")
    return doc["call_id"]


async def load_book(storage: Storage, call_id: str, entries: list[Entry] = ()) -> CallBook:
    """The call's envelope (for who may act on it), with the given entries."""
    envelope = await storage.envelope(call_id)
    if envelope is None:
        raise NotFound(f"call {call_id} is not known to assessment")
    return book_of(envelope, entries)


def entries_of(docs: list[dict[str, Any]]) -> list[Entry]:
    """The committed entries (an application whose first decision is being stored is not shown yet)."""
    return [entry for doc in docs if (entry := committed(doc)) is not None]


def require_staff(who: Principal, book: CallBook, *roles: Role) -> None:
    require_role(who, *roles)
    if not who.in_partnership(book.partnership_id):
        raise Forbidden(f"not a member of partnership {book.partnership_id}")


def entry_view(book: CallBook, entry: Entry, full: bool = True) -> dict[str, Any]:
    view = plain(asdict(entry))
    view.update(call_id=book.call_id, partnership_id=book.partnership_id)
    if not full:  # the applicant sees the decision and its reasons, not the assessors' workings
        for private in ("claims", "assessments", "conflicts", "reserved_cents"):
            view.pop(private)
    return view


async def act(request: Request, call_id: str, check, action: Action, needs: Needs = Needs()) -> CallBook:
    """Authorize against the call, then apply the action (decided again on a race)."""
    storage = storage_of(request)
    check(await load_book(storage, call_id))
    book, _ = await act_on_call(storage, call_id, action, in_request(request), needs=needs)
    return book


async def act_on_application(request: Request, application_id: str, check, action: Action,
                             may_free_money: bool = False) -> dict[str, Any]:
    """An action on one entry; one that may free money also reads the waiting list to promote."""
    call_id = await call_of_application(storage_of(request), application_id)
    needs = Needs(application_id, statuses=(WAITLISTED,) if may_free_money else ())
    book = await act(request, call_id, check, action, needs)
    return entry_view(book, book.entry(application_id))


def assessor_of(who: Principal) -> Assessor:
    return Assessor(who.subject, who.organisation_id)


# --- programme managers ----------------------------------------------------------------

@router.get("/calls/{call_id}")
async def get_call(call_id: str, request: Request, who: Who) -> dict[str, Any]:
    storage = storage_of(request)
    book = await load_book(storage, call_id)
    require_staff(who, book, *STAFF)
    book = await load_book(storage, call_id, entries_of(await storage.entries_of_call(call_id)))
    state = plain(asdict(book))
    state["entries"] = sorted(state["entries"].values(), key=lambda e: e["arrival"])
    state.pop("waiting")  # the response keeps its shape: the waiting list is in the entries
    state["rule_set_version"] = book.policy.label
    return state


@router.put("/calls/{call_id}/rule-set")
async def change_rule_set(call_id: str, body: RuleSetChange, request: Request,
                          who: Who) -> dict[str, Any]:
    rules = [r.model_dump() for r in body.rules] if body.rules is not None else None
    panel = body.model_dump(exclude={"rules"})
    book = await act(request, call_id, lambda b: require_staff(who, b, Role.PROGRAMME_MANAGER),
                     lambda b: b.change_rule_set(who.subject, rules, **panel))
    return {"call_id": call_id, **plain(asdict(book.policy)), "rule_set_version": book.policy.label}


@router.post("/calls/{call_id}/rounds")
async def run_round(call_id: str, request: Request, who: Who) -> dict[str, Any]:
    decided: list[Any] = []

    def round_(book: CallBook) -> list[Any]:
        facts = book.run_round()
        decided[:] = facts
        return facts
    book = await act(request, call_id, lambda b: require_staff(who, b, Role.PROGRAMME_MANAGER), round_,
                     Needs(statuses=(SCORED, WAITLISTED)))
    result: dict[str, list[str]] = {"approved": [], "waitlisted": [], "rejected": []}
    for fact in decided:
        result[type(fact).__name__.lower()].append(fact.application_id)
    waitlist = [e.application_id for e in sorted(book.entries.values(), key=Entry.rank_key)
                if e.status == "waitlisted"]
    return {"call_id": call_id, "decided": result, "waitlist": waitlist,
            "envelope_left_cents": book.envelope_left_cents}


@router.post("/applications/{application_id}/override")
async def override(application_id: str, body: Override, request: Request,
                   who: Who) -> dict[str, Any]:
    return await act_on_application(
        request, application_id, lambda b: require_staff(who, b, Role.PROGRAMME_MANAGER),
        lambda b: b.override(application_id, body.decision, body.justification, who.subject), may_free_money=True)


# --- assessors ---------------------------------------------------------------------------

@router.get("/queue")
async def queue(request: Request, who: Who, partnership_id: str | None = None) -> list[dict[str, Any]]:
    require_role(who, Role.ASSESSOR)
    wanted = [partnership_id] if partnership_id else who.partnership_ids
    if any(not who.in_partnership(p) for p in wanted):
        raise Forbidden(f"not a member of partnership {partnership_id}")
    storage, items = storage_of(request), []
    for pid in wanted:
        for envelope in await storage.calls_of_partnership(pid):
            waiting = [doc for status in (QUEUED, APPEALED) for doc in await storage.entries_in(envelope["_id"], status)]
            book = book_of(envelope, entries_of(waiting))
            items += [entry_view(book, e) for e in book.queue_for(assessor_of(who))]
    return items


@router.post("/applications/{application_id}/claim")
async def claim(application_id: str, request: Request, who: Who) -> dict[str, Any]:
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.claim(application_id, assessor_of(who)))


@router.post("/applications/{application_id}/conflicts")
async def declare_conflict(application_id: str, body: Reasoned, request: Request,
                           who: Who) -> dict[str, Any]:
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.declare_conflict(application_id, assessor_of(who), body.reason))


@router.post("/applications/{application_id}/scores")
async def score(application_id: str, body: ScoreSheet, request: Request,
                who: Who) -> dict[str, Any]:
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.score(application_id, assessor_of(who), body.scores, body.comment))


# --- hosts and visitors ----------------------------------------------------------------------

@router.post("/applications/{application_id}/host-decision")
async def host_decision(application_id: str, body: HostDecision, request: Request,
                        who: Who) -> dict[str, Any]:
    view = await act_on_application(
        request, application_id, lambda b: require_role(who, Role.HOST),
        lambda b: b.host_decides(application_id, who.organisation_id, body.accept, body.reason),
        may_free_money=True)
    return {k: view[k] for k in ("application_id", "call_id", "status", "reasons")}


@router.post("/applications/{application_id}/appeal")
async def appeal(application_id: str, body: Reasoned, request: Request,
                 who: Who) -> dict[str, Any]:
    view = await act_on_application(request, application_id, lambda b: require_role(who, Role.VISITOR),
                                    lambda b: b.appeal(application_id, who.organisation_id, body.reason))
    return {k: view[k] for k in ("application_id", "call_id", "status", "reasons")}


@router.get("/applications/{application_id}")
async def get_application(application_id: str, request: Request,
                          who: Who) -> dict[str, Any]:
    storage = storage_of(request)
    doc = await storage.entry(application_id)
    book = await load_book(storage, await call_of_application(storage, application_id),
                           entries_of([doc] if doc else []))
    entry = book.entry(application_id)
    if who.has(*STAFF) and who.in_partnership(book.partnership_id):
        return entry_view(book, entry)
    if who.organisation_id and who.organisation_id in (entry.visitor_id, entry.host_id):
        return entry_view(book, entry, full=False)
    raise Forbidden("only the partnership's staff, the visitor and the host can read this application")

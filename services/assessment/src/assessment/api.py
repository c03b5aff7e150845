"""HTTP in: assessors (queue, claim, conflicts, scores), programme managers (rule sets,
rounds, overrides), hosts (accept or decline), visitors (appeal). Thin: every action is
a call-book method applied through workflow.act_on_call, with the entries it needs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, StringConstraints, field_validator

from cx_shared import tracing
from cx_shared.auth import Principal, principal, require_role, require_role_in
from cx_shared.errors import Forbidden, NotFound
from cx_shared.events.assessment import CRITERIA_MAX, RULES_MAX
from cx_shared.http import emit
from cx_shared.vocabulary import Role

from assessment.domain import APPEALED, QUEUED, SCORED, WAITLISTED, Assessor, CallBook, Entry
from assessment.storage import Storage, book_of, committed, plain
from assessment.workflow import Action, Needs, act_on_call

router = APIRouter(tags=["assessment"])
STAFF = (Role.PROGRAMME_MANAGER, Role.ASSESSOR)
Who = Annotated[Principal, Depends(principal)]


# --- bounds: every string and collection a person sends is bounded (issue 12) ------------------

# Ids are the platform's own (``app-1a2b...``, ``call-...``): anything else is a 422, before it
# reaches the database (which cannot even hold some characters, such as NUL).
ID = Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
ApplicationId = Annotated[str, ID]
CallId = Annotated[str, ID]
# Rule sets: every version is kept in the call's envelope, which every decision reads.
TEXT_MAX, PARAMS_MAX_CHARS, RULES_MAX_CHARS = 2000, 4000, 16_000
NO_NUL = r"^[^\x00]*$"  # the database cannot store it
Text = Annotated[str, Field(max_length=TEXT_MAX, pattern=NO_NUL)]
# Names become keys of stored documents: no dots, dollars or NUL.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NAME_PATTERN)]
# pydantic declares a key pattern as patternProperties only, which leaves other keys schema-valid:
# the document says what is refused (issue 23).
NAMED_KEYS = {"additionalProperties": False, "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": NAME_PATTERN}}


def storable(value: Any, depth: int = 0) -> bool:
    """A rule's parameters as the database can keep them: shallow, keys without dots, dollars or NUL."""
    if isinstance(value, dict):
        return depth < 4 and all(isinstance(k, str) and not any(c in k for c in ".$\x00") and k
                                 and storable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return depth < 4 and all(storable(v, depth + 1) for v in value)
    return not (isinstance(value, str) and "\x00" in value) and not (isinstance(value, int) and abs(value) >= 2**63)


class RuleSpec(BaseModel):
    rule: Name
    params: dict[str, Any] = Field(default_factory=dict, description=f"at most {PARAMS_MAX_CHARS} characters as "
                                   "JSON, nested at most 4 deep, keys without '.', '$' or NUL")

    @field_validator("params")
    @classmethod
    def _bounded(cls, params: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(params)) > PARAMS_MAX_CHARS:
            raise ValueError(f"at most {PARAMS_MAX_CHARS} characters as JSON")
        if not storable(params):
            raise ValueError("nested at most 4 deep, keys without '.', '$' or NUL, integers of 64 bits")
        return params


class RuleSetChange(BaseModel):
    rules: list[RuleSpec] | None = Field(None, max_length=RULES_MAX,
                                         description="the whole rule list of the new version; omitted: unchanged; "
                                         f"at most {RULES_MAX_CHARS} characters as JSON")
    criteria: Annotated[dict[Name, Annotated[int, Field(ge=1, le=100)]], Field(json_schema_extra=NAMED_KEYS)] | None = \
        Field(None, max_length=CRITERIA_MAX, description="scoring criteria and their weights")
    second_assessor: bool | None = None
    score_gap: float | None = Field(None, ge=0, le=100,
                                    description="scores further apart than this need one more assessor")
    threshold: float | None = Field(None, ge=0, le=100, description="below this score an application is rejected")

    @field_validator("rules")
    @classmethod
    def _bounded(cls, rules: list[RuleSpec] | None) -> list[RuleSpec] | None:
        if rules and len(json.dumps([r.model_dump() for r in rules])) > RULES_MAX_CHARS:
            raise ValueError(f"at most {RULES_MAX_CHARS} characters as JSON")
        return rules


class ScoreSheet(BaseModel):
    scores: dict[Name, Annotated[int, Field(ge=0, le=10)]] = Field(max_length=CRITERIA_MAX,
                                                                   description="criterion -> 0..10",
                                                                   json_schema_extra=NAMED_KEYS)
    comment: Text = ""


class Reasoned(BaseModel):
    reason: Annotated[Text, Field(min_length=1)]


class HostDecision(BaseModel):
    accept: bool
    reason: Text = ""


class Override(BaseModel):
    decision: Literal["approved", "waitlisted", "rejected"]
    justification: Text = Field(description="mandatory: why the manager departs from the assessment")


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def in_request(request: Request):
    return lambda event, subject: emit(request, event, subject)


async def submission_of(storage: Storage, application_id: str) -> dict[str, Any]:
    doc = await storage.submission(application_id)
    if doc is None:
        raise NotFound(f"application {application_id} is not known to assessment")
    return doc


async def call_of_application(storage: Storage, application_id: str) -> str:
    return (await submission_of(storage, application_id))["call_id"]


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
    """One of `roles` in the call's partnership: a role held in another partnership is no right here."""
    require_role_in(who, book.partnership_id, *roles)


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
    """An action on one entry; one that may free money also reads the waiting list to promote.
    Its span links to the exchange's trace (that of its submission): this request is a trace of its own."""
    submission = await submission_of(storage_of(request), application_id)
    needs = Needs(application_id, statuses=(WAITLISTED,) if may_free_money else ())
    with tracing.linked("act on application", submission.get("traceparent"), submission.get("tracestate"),
                        **{"cx.application_id": application_id}):
        book = await act(request, submission["call_id"], check, action, needs)
    return entry_view(book, book.entry(application_id))


async def staff_member(request: Request, who: Principal) -> Assessor:
    """The caller with the organisations he owns: he may not judge their applications."""
    return Assessor(who.subject, who.organisation_id, await storage_of(request).organisations_owned_by(who.subject))


# --- programme managers ----------------------------------------------------------------

@router.get("/calls/{call_id}")
async def get_call(call_id: CallId, request: Request, who: Who) -> dict[str, Any]:
    storage = storage_of(request)
    book = await load_book(storage, call_id)
    require_staff(who, book, *STAFF)
    book = await load_book(storage, call_id, entries_of(await storage.entries_of_call(call_id)))
    me = await staff_member(request, who)
    state = plain(asdict(book))
    # an application the caller is a party to is shown as its applicant sees it
    state["entries"] = sorted((entry_view(book, e, full=not me.party_to(e)) for e in book.entries.values()),
                              key=lambda e: e["arrival"])
    state.pop("waiting")  # the response keeps its shape: the waiting list is in the entries
    state["rule_set_version"] = book.policy.label
    return state


@router.put("/calls/{call_id}/rule-set")
async def change_rule_set(call_id: CallId, body: RuleSetChange, request: Request,
                          who: Who) -> dict[str, Any]:
    rules = [r.model_dump() for r in body.rules] if body.rules is not None else None
    panel = body.model_dump(exclude={"rules"})
    book = await act(request, call_id, lambda b: require_staff(who, b, Role.PROGRAMME_MANAGER),
                     lambda b: b.change_rule_set(who.subject, rules, **panel))
    return {"call_id": call_id, **plain(asdict(book.policy)), "rule_set_version": book.policy.label}


@router.post("/calls/{call_id}/rounds")
async def run_round(call_id: CallId, request: Request, who: Who) -> dict[str, Any]:
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
async def override(application_id: ApplicationId, body: Override, request: Request,
                   who: Who) -> dict[str, Any]:
    manager = await staff_member(request, who)
    return await act_on_application(
        request, application_id, lambda b: require_staff(who, b, Role.PROGRAMME_MANAGER),
        lambda b: b.override(application_id, body.decision, body.justification, manager), may_free_money=True)


# --- assessors ---------------------------------------------------------------------------

@router.get("/queue")
async def queue(request: Request, who: Who,
                partnership_id: Annotated[str | None, Query(max_length=300, pattern=NO_NUL)] = None
                ) -> list[dict[str, Any]]:
    require_role(who, Role.ASSESSOR)
    if partnership_id:
        require_role_in(who, partnership_id, Role.ASSESSOR)
    assessor = await staff_member(request, who)
    wanted = [partnership_id] if partnership_id else who.partnerships_with(Role.ASSESSOR)
    storage, items = storage_of(request), []
    for pid in wanted:
        for envelope in await storage.calls_of_partnership(pid):
            waiting = [doc for status in (QUEUED, APPEALED)
                       for doc in await storage.entries_in(envelope["_id"], status)]
            book = book_of(envelope, entries_of(waiting))
            items += [entry_view(book, e) for e in book.queue_for(assessor)]
    return items


@router.post("/applications/{application_id}/claim")
async def claim(application_id: ApplicationId, request: Request, who: Who) -> dict[str, Any]:
    assessor = await staff_member(request, who)
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.claim(application_id, assessor))


@router.post("/applications/{application_id}/conflicts")
async def declare_conflict(application_id: ApplicationId, body: Reasoned, request: Request,
                           who: Who) -> dict[str, Any]:
    assessor = Assessor(who.subject, who.organisation_id)  # declaring one's own conflict needs no check
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.declare_conflict(application_id, assessor, body.reason))


@router.post("/applications/{application_id}/scores")
async def score(application_id: ApplicationId, body: ScoreSheet, request: Request,
                who: Who) -> dict[str, Any]:
    assessor = await staff_member(request, who)
    return await act_on_application(request, application_id, lambda b: require_staff(who, b, Role.ASSESSOR),
                                    lambda b: b.score(application_id, assessor, body.scores, body.comment))


# --- hosts and visitors ----------------------------------------------------------------------

@router.post("/applications/{application_id}/host-decision")
async def host_decision(application_id: ApplicationId, body: HostDecision, request: Request,
                        who: Who) -> dict[str, Any]:
    view = await act_on_application(
        request, application_id, lambda b: require_role(who, Role.HOST),
        lambda b: b.host_decides(application_id, who.organisation_id, body.accept, body.reason),
        may_free_money=True)
    return {k: view[k] for k in ("application_id", "call_id", "status", "reasons")}


@router.post("/applications/{application_id}/appeal")
async def appeal(application_id: ApplicationId, body: Reasoned, request: Request,
                 who: Who) -> dict[str, Any]:
    view = await act_on_application(request, application_id, lambda b: require_role(who, Role.VISITOR),
                                    lambda b: b.appeal(application_id, who.organisation_id, body.reason))
    return {k: view[k] for k in ("application_id", "call_id", "status", "reasons")}


@router.get("/applications/{application_id}")
async def get_application(application_id: ApplicationId, request: Request,
                          who: Who) -> dict[str, Any]:
    storage = storage_of(request)
    doc = await storage.entry(application_id)
    book = await load_book(storage, await call_of_application(storage, application_id),
                           entries_of([doc] if doc else []))
    entry = book.entry(application_id)
    party = (await staff_member(request, who)).party_to(entry)  # by token organisation or ownership
    if who.has_in(book.partnership_id, *STAFF) and not party:
        return entry_view(book, entry)
    if party:  # staff too: a party reads what the applicant reads, not the assessors' workings
        return entry_view(book, entry, full=False)
    raise Forbidden("only the partnership's staff, the visitor and the host can read this application")

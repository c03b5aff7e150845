"""The HTTP API (thin): authenticate, read what the rules need, decide in the domain,
store the change together with its event. Every error is an RFC 9457 problem."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlencode
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from cx_shared.auth import Principal, principal, require_role, require_role_in
from cx_shared.errors import Conflict, Forbidden, NotFound
from cx_shared.events.applications import (ApplicationCancelled, ApplicationSubmittedV2, ApplicationWithdrawn,
                                           CallCancelled, CallClosed, CallPublished, ExchangeClosed, ExchangeCompleted,
                                           ExchangeNoShow, ExchangeStarted, HostFeedbackSubmitted, MembershipJoined,
                                           MembershipLeft, OfferPublished,
                                           OfferUpdated, OfferWithdrawn,
                                           OrganisationEnrolled, OrganisationUpdated, PartnershipFormed,
                                           PartnershipUpdated,
                                           PreparationUpdated, ReportAccepted, ReportChangesRequested,
                                           ReportSubmitted)
from cx_shared.events.common import Party
from cx_shared.http import Day, emit
from cx_shared.personal_data.sealed import SEALED_VERSIONS, sealed
from cx_shared.store import public
from cx_shared.vocabulary import Ecosystem, Role

from applications import access, audience, documents, domain, followup, pages, rules
from applications.domain import OFFER_WITHDRAWN, Status
from applications.pages import Cursor
from applications.schemas import (ApplicationIn, ArrivalIn, CallIn, CountryFilter, DepartureIn, HostFeedbackIn,
                                  IdFilter, IdPath, MembershipIn, OfferIn, OfferPatch, OrganisationIn,
                                  OrganisationPatch, PartnershipIn, PartnershipKeyPath, PartnershipPatch, PreparationIn,
                                  ReasonIn, ReportIn, ReviewIn)
from applications.storage import (APPLICATIONS, CALLS, OFFERS, ORGANISATIONS, PARTNERSHIPS, ApplicationFilter,
                                  Storage)

router = APIRouter()
Who = Annotated[Principal, Depends(principal)]
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7f0e-1d0b-4c55-9a57-7b1e3b9f2a10")


def storage(request: Request) -> Storage:
    return request.app.state.storage


Store = Annotated[Storage, Depends(storage)]


def today() -> date:
    return datetime.now(UTC).date()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def out(doc: dict[str, Any]) -> dict[str, Any]:
    result = public(doc) or {}
    result.pop("_id", None)
    return result


# --- organisations -------------------------------------------------------------------------

def organisation_out(doc: dict, shown: bool) -> dict:
    """An organisation, its contact person, owner and memberships only where `shown`."""
    result = out(doc)
    if not shown:
        for private in access.PRIVATE:
            result.pop(private, None)
    return result


async def contacts_shown(store: Storage, who: Principal, docs: list[dict]) -> set[str]:
    """Of these organisations, those whose contact person the caller reads (access.sees_contact);
    the exchanges they are parties of are read only for those the rest does not decide."""
    undecided = [d["_id"] for d in docs if not access.sees_contact(who, d)]
    running = await store.exchange_parties(who.partnerships_with(*access.STAFF), undecided) if undecided else set()
    return {d["_id"] for d in docs if access.sees_contact(who, d, d["_id"] in running)}


async def organisations_out(store: Storage, who: Principal, docs: list[dict]) -> list[dict]:
    shown = await contacts_shown(store, who, docs)
    return [organisation_out(d, d["_id"] in shown) for d in docs]


@router.post("/organisations", status_code=201, tags=["enrolment"])
async def enrol_organisation(body: OrganisationIn, request: Request, who: Who, store: Store) -> dict:
    """Enrol a visitor and/or host organisation; the caller becomes its owner."""
    require_role(who, Role.VISITOR, Role.HOST, Role.PROGRAMME_MANAGER)
    data = body.model_dump(mode="json")
    rules.refuse(rules.organisation_violations(data))
    event = OrganisationEnrolled(organisation_id=new_id("org"), revision=1, owner=who.subject, **data)
    doc = documents.organisation(event)
    travelling = await sealed(event, request.app.state.keys)  # the contact person sealed under its key
    await store.create(ORGANISATIONS, doc, emit(request, travelling, subject=event.organisation_id))
    return out(doc)


async def one_or_404(store: Storage, collection: str, key: str, what: str) -> dict:
    doc = await store.get(collection, key)
    if doc is None:
        raise NotFound(f"no {what} {key}")
    return doc


async def organisation_or_404(store: Storage, organisation_id: str) -> dict:
    return await one_or_404(store, ORGANISATIONS, organisation_id, "organisation")


@router.get("/organisations/{organisation_id}", tags=["enrolment"])
async def get_organisation(organisation_id: IdPath, who: Who, store: Store) -> dict:
    return (await organisations_out(store, who, [await organisation_or_404(store, organisation_id)]))[0]


@router.get("/organisations", tags=["enrolment"])
async def list_organisations(who: Who, store: Store, role: Literal["visitor", "host"] | None = None,
                             country: CountryFilter = None, ecosystem: Ecosystem | None = None) -> list[dict]:
    query = {k: v for k, v in (("roles", role), ("country", country and country.upper()), ("ecosystems", ecosystem))
             if v}
    return await organisations_out(store, who, await store.list_organisations(query))


@router.patch("/organisations/{organisation_id}", tags=["enrolment"])
async def update_organisation(organisation_id: IdPath, body: OrganisationPatch, request: Request, who: Who,
                              store: Store) -> dict:
    """Change an enrolment made against `revision` (409 if it changed since); emits OrganisationUpdated."""
    current = await organisation_or_404(store, organisation_id)
    if not access.acts_for(who, current):
        raise Forbidden("you do not act for this organisation")
    if body.revision != current["revision"]:
        raise Conflict(f"the organisation is at revision {current['revision']}, not {body.revision}: reload it")
    data = body.model_dump(mode="json")  # a contact given whole, with its defaults
    changes = {k: data[k] for k in body.model_fields_set - {"revision"}}
    merged = {**out(current), **changes, "revision": current["revision"] + 1}
    rules.refuse(rules.organisation_violations(merged))
    event = OrganisationUpdated(**merged)
    fields = {k: v for k, v in documents.organisation(event).items() if k not in ("_id", "revision")}
    travelling = await sealed(event, request.app.state.keys)
    if not await store.update_revised(ORGANISATIONS, organisation_id, current["revision"], fields,
                                      emit(request, travelling, subject=organisation_id)):
        raise Conflict("the organisation changed meanwhile: reload it")
    return organisation_out(await organisation_or_404(store, organisation_id), True)  # the caller acts for it


async def own_organisation(store: Storage, who: Principal, organisation_id: str) -> dict:
    """The organisation, if the caller is the organisation itself: membership is its own act."""
    organisation = await organisation_or_404(store, organisation_id)
    if not access.is_party(who, organisation):
        raise Forbidden("only the organisation itself (its owner or its token) joins or leaves a partnership")
    return organisation


@router.post("/organisations/{organisation_id}/partnerships", status_code=201, tags=["enrolment"])
async def join_partnership(organisation_id: IdPath, body: MembershipIn, request: Request, who: Who,
                           store: Store) -> dict:
    """The organisation joins a partnership, by its own act: that partnership's programme managers
    may then act for it (enrolment, offers, personal-data requests) and its staff read its contact
    person. Applying to a call joins nothing. Emits MembershipJoined; 409 if a member already."""
    organisation = await own_organisation(store, who, organisation_id)
    if await store.get(PARTNERSHIPS, body.partnership_id) is None:
        rules.refuse([rules.violation("partnership_id", "exists", f"no partnership {body.partnership_id}")])
    held = organisation.get(access.MEMBERSHIPS) or {}
    if body.partnership_id in held:
        raise Conflict(f"the organisation is a member of {body.partnership_id} already")
    if len(held) >= domain.MAX_MEMBERSHIPS:
        rules.refuse([rules.violation("partnership_id", "at_most", f"an organisation belongs to at most "
                                                                   f"{domain.MAX_MEMBERSHIPS} partnerships")])
    event = MembershipJoined(organisation_id=organisation_id, partnership_id=body.partnership_id,
                             joined_by=who.subject, joined_at=datetime.now(UTC))
    envelope = emit(request, event, subject=organisation_id)
    if not await store.change_membership(organisation_id, body.partnership_id, documents.membership(event),
                                         event_id=envelope.id, events=(envelope,)):
        raise Conflict(f"the organisation joined {body.partnership_id} meanwhile")
    return organisation_out(await organisation_or_404(store, organisation_id), True)


@router.delete("/organisations/{organisation_id}/partnerships/{partnership_id}", tags=["enrolment"])
async def leave_partnership(organisation_id: IdPath, partnership_id: PartnershipKeyPath, request: Request,
                            who: Who, store: Store) -> dict:
    """The organisation leaves a partnership, by its own act: its managers act for it no more.
    Emits MembershipLeft; 404 if it is no member."""
    organisation = await own_organisation(store, who, organisation_id)
    if partnership_id not in (organisation.get(access.MEMBERSHIPS) or {}):
        raise NotFound(f"the organisation is no member of {partnership_id}")
    event = MembershipLeft(organisation_id=organisation_id, partnership_id=partnership_id, left_by=who.subject,
                           left_at=datetime.now(UTC))
    envelope = emit(request, event, subject=organisation_id)
    if not await store.change_membership(organisation_id, partnership_id, None, event_id=envelope.id,
                                         events=(envelope,)):
        raise NotFound(f"the organisation left {partnership_id} meanwhile")
    return organisation_out(await organisation_or_404(store, organisation_id), True)


# --- partnerships and calls ----------------------------------------------------------------

def partnership_event(cls: type[PartnershipFormed], partnership_id: str, revision: int,
                      data: dict[str, Any]) -> PartnershipFormed:
    """The partnership's whole state as an event; member clusters and countries are its members'."""
    members = data["members"]
    return cls(partnership_id=partnership_id, partnership_name=data["name"], members=members,
               member_clusters=[m["legal_name"] for m in members],
               countries=list(dict.fromkeys(m["country"] for m in members)), ecosystems=data["ecosystems"],
               contact_email=data.get("contact_email"), revision=revision)


@router.post("/partnerships", status_code=201, tags=["calls"])
async def form_partnership(body: PartnershipIn, request: Request, who: Who, store: Store) -> dict:
    """Form a partnership; its consortium must meet the consortium rule (422 naming the rule)."""
    require_role(who, Role.PROGRAMME_MANAGER)
    if not access.programme_wide(who):  # a partnership's manager manages his, he does not found others
        raise Forbidden("forming a partnership needs a programme-wide manager (token claim programme: true)")
    data = body.model_dump(mode="json")
    rules.refuse(rules.partnership_violations(data))
    event = partnership_event(PartnershipFormed, new_id("ptn"), 1, data)
    doc = documents.partnership(event)
    await store.create(PARTNERSHIPS, doc, emit(request, event, subject=event.partnership_id))
    return out(doc)


@router.get("/partnerships", tags=["calls"])
async def list_partnerships(who: Who, store: Store) -> list[dict]:
    """A programme-wide manager sees every partnership, staff see their own, anybody else none."""
    if access.programme_wide(who):
        return [out(d) for d in await store.list_partnerships(None)]
    return [out(d) for d in await store.list_partnerships(set(who.partnerships_with(*access.STAFF)))]


@router.get("/partnerships/{partnership_id}", tags=["calls"])
async def get_partnership(partnership_id: IdPath, who: Who, store: Store) -> dict:
    """A partnership; its contact e-mail only for its own staff and programme-wide managers."""
    result = out(await one_or_404(store, PARTNERSHIPS, partnership_id, "partnership"))
    if not access.sees_partnership_contact(who, partnership_id):
        result.pop("contact_email", None)
    return result


@router.patch("/partnerships/{partnership_id}", tags=["calls"])
async def update_partnership(partnership_id: IdPath, body: PartnershipPatch, request: Request, who: Who,
                             store: Store) -> dict:
    """Change a partnership made against `revision` (409 if it changed since), its manager or a
    programme-wide one; the consortium rule holds after the change. Emits PartnershipUpdated."""
    current = await one_or_404(store, PARTNERSHIPS, partnership_id, "partnership")
    require_role_in(who, partnership_id, Role.PROGRAMME_MANAGER)
    if body.revision != current.get("revision", 1):
        raise Conflict(f"the partnership is at revision {current.get('revision', 1)}, not {body.revision}: reload it")
    data = body.model_dump(mode="json")
    merged = {**out(current), **{k: data[k] for k in body.model_fields_set - {"revision"}}}
    rules.refuse(rules.partnership_violations({"members": [], **merged}))
    event = partnership_event(PartnershipUpdated, partnership_id, body.revision + 1, {"members": [], **merged})
    fields = {k: v for k, v in documents.partnership(event).items() if k not in ("_id", "revision")}
    if not await store.update_revised(PARTNERSHIPS, partnership_id, body.revision, fields,
                                      emit(request, event, subject=partnership_id)):
        raise Conflict("the partnership changed meanwhile: reload it")
    return out(await one_or_404(store, PARTNERSHIPS, partnership_id, "partnership"))


def call_out(doc: dict) -> dict:
    result = out(doc)
    result["open"] = (doc.get("status") not in (domain.CALL_CLOSED, domain.CALL_CANCELLED)
                      and date.fromisoformat(doc["opens_on"]) <= today() <= date.fromisoformat(doc["closes_on"]))
    return result


async def call_to_end(store: Storage, who: Principal, call_id: str) -> dict:
    """The call, if the caller is a programme manager of its partnership and it is not cancelled."""
    call = await one_or_404(store, CALLS, call_id, "call")
    require_role_in(who, call["partnership_id"], Role.PROGRAMME_MANAGER)
    if call.get("status") == domain.CALL_CANCELLED:
        raise Conflict("the call was cancelled")
    return call


async def store_call_end(store: Storage, request: Request, call: dict, event: CallClosed | CallCancelled,
                         fields: dict[str, Any]) -> dict:
    if not await store.end_call(call["call_id"], fields, emit(request, event, subject=call["call_id"])):
        raise Conflict("the call was cancelled meanwhile")
    return call_out(await one_or_404(store, CALLS, call["call_id"], "call"))


@router.post("/calls/{call_id}/closure", tags=["calls"])
async def close_call(call_id: IdPath, request: Request, who: Who, store: Store,
                     body: Annotated[ReasonIn | None, Body()] = None) -> dict:
    """Close an open call today, before its closing day: no application is accepted after it."""
    call = await call_to_end(store, who, call_id)
    if call.get("status") == domain.CALL_CLOSED or date.fromisoformat(call["closes_on"]) < today():
        raise Conflict(f"the call is closed already (on {call['closes_on']})")
    event = CallClosed(call_id=call_id, partnership_id=call["partnership_id"], closed_on=today(),
                       reason=body.reason if body else "", closed_by=who.subject)
    return await store_call_end(store, request, call, event, documents.call_closure(event))


@router.post("/calls/{call_id}/cancellation", tags=["calls"])
async def cancel_call(call_id: IdPath, body: ReasonIn, request: Request, who: Who, store: Store) -> dict:
    """Cancel a call: no application is accepted any more, and every exchange of it not yet granted
    is cancelled (releasing what assessment holds for it; its parties are told)."""
    call = await call_to_end(store, who, call_id)
    event = CallCancelled(call_id=call_id, partnership_id=call["partnership_id"], reason=body.reason,
                          cancelled_by=who.subject)
    return await store_call_end(store, request, call, event, documents.call_cancellation(event))


@router.post("/calls", status_code=201, tags=["calls"])
async def publish_call(body: CallIn, request: Request, who: Who, store: Store) -> dict:
    """Publish a partnership's call for exchanges: dates, eligible countries, budget, rule sets."""
    require_role_in(who, body.partnership_id, Role.PROGRAMME_MANAGER)
    found = rules.call_violations(body.model_dump())
    if await store.get(PARTNERSHIPS, body.partnership_id) is None:
        found.append(rules.violation("partnership_id", "exists", f"no partnership {body.partnership_id}"))
    rules.refuse(found)
    event = CallPublished(call_id=new_id("call"), **body.model_dump(mode="json"))
    doc = documents.call(event)
    await store.create(CALLS, doc, emit(request, event, subject=event.call_id))
    return call_out(doc)


@router.get("/calls/{call_id}", tags=["calls"])
async def get_call(call_id: IdPath, who: Who, store: Store) -> dict:
    return call_out(await one_or_404(store, CALLS, call_id, "call"))


CALLS_PAGE = 500  # the most calls one answer holds


@router.get("/calls", tags=["calls"], responses={200: {"headers": {"Link": {
    "description": 'the next page, `<...>; rel="next"`, when there are more calls', "schema": {"type": "string"}}}}})
async def list_calls(who: Who, store: Store, response: Response, partnership_id: IdFilter = None,
                     limit: Annotated[int, Query(ge=1, le=CALLS_PAGE)] = CALLS_PAGE, after: Cursor = None) -> list[dict]:
    """Calls by opening day, `limit` at a time (500 at most); the body stays a list, and when there
    are more the `Link` header names the next page (`rel="next"`, its `after` a cursor)."""
    query = {"partnership_id": partnership_id} if partnership_id else {}
    found = await store.list_calls(query, pages.key_of(after, "after", 2), limit + 1)
    if len(found) > limit:
        last = found[limit - 1]
        asked = {k: v for k, v in (("partnership_id", partnership_id), ("limit", limit)) if v}
        asked["after"] = pages.cursor(last["opens_on"], last["_id"])
        response.headers["Link"] = f'</calls?{urlencode(asked)}>; rel="next"'
    return [call_out(d) for d in found[:limit]]


# --- offers --------------------------------------------------------------------------------

MAX_PAGE = 10  # pages of at most 100: the database skips 900 at most; further on, the cursor (`after`)

@router.post("/offers", status_code=201, tags=["offers"])
async def publish_offer(body: OfferIn, request: Request, who: Who, store: Store) -> dict:
    """A host publishes an exchange opportunity: window, capacity (visitors at once), language."""
    require_role(who, Role.HOST, Role.PROGRAMME_MANAGER)
    host = await store.get(ORGANISATIONS, body.host_id)
    if host is not None and not access.acts_for(who, host):
        raise Forbidden("you do not act for this host")
    rules.refuse(rules.offer_violations(body.model_dump(), host, today()))
    event = OfferPublished(offer_id=new_id("offer"), country=host["country"], city=host["city"],
                           **body.model_dump(mode="json"))
    doc = documents.offer(event)
    await store.create(OFFERS, doc, emit(request, event, subject=event.offer_id))
    await store.index_offer(event.offer_id)
    return out(doc)


@router.get("/offers/{offer_id}", tags=["offers"])
async def get_offer(offer_id: IdPath, who: Who, store: Store) -> dict:
    return out(await one_or_404(store, OFFERS, offer_id, "offer"))


async def offer_to_change(store: Storage, who: Principal, offer_id: str, revision: int) -> tuple[dict, dict]:
    """The offer and its host, if the caller acts for the host and the offer is still open at `revision`."""
    require_role(who, Role.HOST, Role.PROGRAMME_MANAGER)
    offer = await one_or_404(store, OFFERS, offer_id, "offer")
    host = await organisation_or_404(store, offer["host_id"])
    if not access.acts_for(who, host):
        raise Forbidden("you do not act for this host")
    if offer.get("status") == OFFER_WITHDRAWN:
        raise Conflict("the offer was withdrawn: it cannot change any more")
    if revision != offer.get("revision", 1):
        raise Conflict(f"the offer is at revision {offer.get('revision', 1)}, not {revision}: reload it")
    return offer, host


async def store_offer_change(store: Storage, request: Request, offer: dict, event: OfferUpdated | OfferWithdrawn,
                             fields: dict[str, Any]) -> dict:
    if not await store.update_revised(OFFERS, offer["offer_id"], offer.get("revision", 1), fields,
                                      emit(request, event, subject=offer["offer_id"])):
        raise Conflict("the offer changed meanwhile: reload it")
    await store.index_offer(offer["offer_id"])
    return out(await one_or_404(store, OFFERS, offer["offer_id"], "offer"))


@router.patch("/offers/{offer_id}", tags=["offers"])
async def update_offer(offer_id: IdPath, body: OfferPatch, request: Request, who: Who, store: Store) -> dict:
    """The host changes its offer (window, capacity, description...) made against `revision`
    (409 if it changed since); emits OfferUpdated. Exchanges already accepted through it stay."""
    offer, host = await offer_to_change(store, who, offer_id, body.revision)
    data = body.model_dump(mode="json")
    merged = {**out(offer), **{k: data[k] for k in body.model_fields_set - {"revision"}}}
    rules.refuse(rules.offer_violations(OfferIn.model_validate(merged).model_dump(), host, today()))
    event = OfferUpdated.model_validate({**merged, "revision": body.revision + 1})
    fields = {k: v for k, v in documents.offer(event).items() if k not in ("_id", "revision")}
    return await store_offer_change(store, request, offer, event, fields)


@router.post("/offers/{offer_id}/withdrawal", tags=["offers"])
async def withdraw_offer(offer_id: IdPath, request: Request, who: Who, store: Store,
                         body: Annotated[ReasonIn | None, Body()] = None) -> dict:
    """The host withdraws its offer: no new application goes through it (those made stay); emits OfferWithdrawn."""
    current = await one_or_404(store, OFFERS, offer_id, "offer")
    offer, _ = await offer_to_change(store, who, offer_id, current.get("revision", 1))
    event = OfferWithdrawn(offer_id=offer_id, host_id=offer["host_id"], reason=body.reason if body else "",
                           withdrawn_by=who.subject, revision=offer.get("revision", 1) + 1)
    return await store_offer_change(store, request, offer, event, documents.offer_withdrawal(event))


@router.get("/offers", tags=["offers"])
async def search_offers(who: Who, store: Store, ecosystem: Ecosystem | None = None, country: CountryFilter = None,
                        start: Day | None = None, end: Day | None = None,  # YYYY-MM-DD, declared bounds
                        q: Annotated[str | None, Query(max_length=100)] = None,
                        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
                        size: Annotated[int, Query(ge=1, le=100)] = 20, after: Cursor = None) -> dict:
    """Offers whose window overlaps start..end, by ecosystem, host country and words (all of them, in
    the title or description; two letters at least, accents and case aside), oldest window first.
    `page` reaches the first 1,000 or so; `next` is the cursor of the page after this one (null at the
    end), given back as `after`. No total is counted (it cost a count of every match on every call)."""
    terms = documents.words(q)[:documents.MAX_QUERY_TERMS] if q is not None else None
    if after is not None and page > 1:
        rules.refuse([rules.violation("query.page", "page_or_after", "give `after` (from `next`) or `page`, not both")])
    if terms == []:  # no word to look for: nothing has it
        return {"items": [], "page": page, "size": size, "next": None}
    items, last = await store.search_offers(ecosystem=ecosystem, country=country, start=start, end=end, terms=terms,
                                            after=pages.key_of(after, "after", 2), skip=(page - 1) * size,
                                            limit=size)
    return {"items": [out(d) for d in items], "page": page, "size": size,
            "next": pages.cursor(*last) if last else None}


# --- applications --------------------------------------------------------------------------

async def my_organisations(who: Principal, store: Storage) -> set[str]:
    mine = set(await store.organisations_owned_by(who.subject))
    return mine | ({who.organisation_id} if who.organisation_id else set())


def party(org: dict) -> Party:
    """The organisation as a submission carries it: no contact person (minimised)."""
    return Party.model_validate(org)


def same_request(doc: dict, body: ApplicationIn) -> bool:
    asked = body.model_dump(mode="json")
    return all(doc.get(k) == v for k, v in asked.items())


@router.post("/applications", status_code=201, tags=["applications"])
async def submit_application(body: ApplicationIn, request: Request, who: Who, store: Store,
                             idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> dict:
    """Submit an application; the same Idempotency-Key returns the first result."""
    require_role(who, Role.VISITOR)
    visitor = await store.get(ORGANISATIONS, body.visitor_id)
    if visitor is not None and not access.acts_for(who, visitor):
        raise Forbidden("you do not act for this visitor organisation")
    application_id = (str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{body.visitor_id}\n{idempotency_key}"))
                      if idempotency_key else str(uuid.uuid4()))
    # Capacity and overlap are read from other applications: the check and the insert hold the
    # offer's and the visitor's locks, so two submissions cannot both take the last place (and a
    # repeat of a request still in flight finds its first result, not an overlap with it).
    locks = [f"visitor:{body.visitor_id}"] + ([f"offer:{body.offer_id}"] if body.offer_id else [])
    async with store.locks.hold(*locks):
        if idempotency_key and (first := await store.get(APPLICATIONS, application_id)) is not None:
            return await replay(store, who, first, body)
        return await check_and_submit(body, request, who, store, application_id, visitor)


async def check_and_submit(body: ApplicationIn, request: Request, who: Principal, store: Storage,
                           application_id: str, visitor: dict | None) -> dict:
    call = await store.get(CALLS, body.call_id)
    host = await store.get(ORGANISATIONS, body.host_id)
    offer = await store.get(OFFERS, body.offer_id) if body.offer_id else None
    start, end = body.planned_start.isoformat(), body.planned_end.isoformat()
    bookings = await store.overlapping("offer_id", body.offer_id, start, end) if offer else []
    clashes = await store.overlapping("visitor_id", body.visitor_id, start, end)
    proposal = rules.Proposal(body.call_id, body.visitor_id, body.host_id, body.offer_id, body.planned_start,
                              body.planned_end)
    context = rules.Context(today(), call, visitor, host, offer, len(bookings), tuple(clashes))
    rules.refuse(rules.submission_violations(proposal, context))
    ecosystems = set(visitor["ecosystems"]) | set(host["ecosystems"]) | ({offer["ecosystem"]} if offer else set())
    event = ApplicationSubmittedV2(
        application_id=application_id, call_id=call["call_id"], partnership_id=call["partnership_id"],
        offer_id=body.offer_id, visitor=party(visitor), host=party(host), purposes=body.purposes,
        objectives=body.objectives, planned_start=body.planned_start, planned_end=body.planned_end,
        working_days=rules.working_days(body.planned_start, body.planned_end, host["country"]),
        travel_mode=body.travel_mode, ecosystems=sorted(ecosystems), submitted_at=datetime.now(UTC),
        visitor_ecosystems=visitor["ecosystems"], host_ecosystems=host["ecosystems"])
    envelope = emit(request, event, subject=application_id)
    doc = documents.application(event, envelope)
    if not await store.create(APPLICATIONS, doc, envelope):  # the same key, submitted concurrently
        return await replay(store, who, await store.get(APPLICATIONS, application_id), body)
    return await exchange_out(store, who, doc)  # an exchange: no membership of its partnership for anyone


async def replay(store: Storage, who: Principal, first: dict, body: ApplicationIn) -> dict:
    if not same_request(first, body):
        raise Conflict("this Idempotency-Key was used for a different application")
    return await exchange_out(store, who, first)


async def visible_application(store: Storage, who: Principal, application_id: str) -> dict:
    """The application if the caller may see it; 404 otherwise (not 403: its existence is private)."""
    doc = await store.get(APPLICATIONS, application_id)
    if doc is None or not access.sees_application(who, doc, await my_organisations(who, store)):
        raise NotFound(f"no application {application_id}")
    return doc


@router.get("/applications/{application_id}", tags=["applications"])
async def get_application(application_id: IdPath, who: Who, store: Store) -> dict:
    """Status and timeline (who did what, when, why) of one exchange."""
    return await exchange_out(store, who, await visible_application(store, who, application_id))


TIMELINE_PAGE = 200  # the most entries of one page of a timeline


@router.get("/applications/{application_id}/timeline", tags=["applications"])
async def read_timeline(application_id: IdPath, who: Who, store: Store, before: Cursor = None,
                        limit: Annotated[int, Query(ge=1, le=TIMELINE_PAGE)] = 50) -> dict:
    """The exchange's timeline as the caller may read it, newest first, a page at a time: `next` is the
    cursor of the older entries (null at the oldest). An event the service made a moment ago is in
    the exchange's own `timeline` at once, here when it came back from the broker."""
    doc = await visible_application(store, who, application_id)
    viewers = access.viewers(who, doc, await my_organisations(who, store))
    found = await store.timeline_page(application_id, audience.shown_to(viewers), pages.key_of(before, "before", 2),
                                      limit + 1)
    last = found[limit - 1] if len(found) > limit else None
    items = [{k: v for k, v in e.items() if k != "_id"} for e in audience.timeline_for(found[:limit], viewers)]
    return {"items": items, "next": pages.cursor(last["at"], last["_id"]) if last else None}


async def exchange_out(store: Storage, who: Principal, doc: dict) -> dict:
    """An exchange and its timeline as the caller may read them (see audience.py)."""
    viewers = access.viewers(who, doc, await my_organisations(who, store))
    whole = await store.with_timeline(doc)
    return out({**audience.exchange_for(whole, viewers), "timeline": audience.timeline_for(whole["timeline"], viewers)})


@router.get("/applications", tags=["applications"])
async def list_applications(who: Who, store: Store, call_id: IdFilter = None, partnership_id: IdFilter = None,
                            status: Status | None = None, country: CountryFilter = None,
                            ecosystem: Ecosystem | None = None) -> list[dict]:
    """The caller's applications (visitor: its own; host: addressed to it; staff: its partnerships')."""
    mine = await my_organisations(who, store)
    scope = ApplicationFilter(
        visitor_ids=mine if who.has(Role.VISITOR) else set(), host_ids=mine if who.has(Role.HOST) else set(),
        partnership_ids=None if access.programme_wide(who) else set(who.partnerships_with(*access.STAFF)),
        call_id=call_id, partnership_id=partnership_id, status=status, country=country and country.upper(),
        ecosystem=ecosystem)
    return [out(audience.exchange_for(d, access.viewers(who, d, mine))) for d in await store.list_applications(scope)]


@router.post("/applications/{application_id}/withdraw", tags=["applications"])
async def withdraw_application(application_id: IdPath, request: Request, who: Who, store: Store,
                               body: Annotated[ReasonIn | None, Body()] = None) -> dict:
    """The visitor withdraws (409 with the reason where the state machine does not allow it)."""
    doc = await acting_as(store, who, application_id, "visitor_id", Role.VISITOR)
    event = ApplicationWithdrawn(application_id=application_id, call_id=doc["call_id"],
                                 reason=body.reason if body else "", withdrawn_by=who.subject)
    return await change_status(store, request, who, doc, event, Status.WITHDRAWN)


@router.post("/applications/{application_id}/cancel", tags=["applications"])
async def cancel_application(application_id: IdPath, body: ReasonIn, request: Request, who: Who,
                             store: Store) -> dict:
    """A programme manager of the partnership cancels an exchange."""
    doc = await visible_application(store, who, application_id)
    require_role_in(who, doc["partnership_id"], Role.PROGRAMME_MANAGER)
    event = ApplicationCancelled(application_id=application_id, call_id=doc["call_id"], reason=body.reason,
                                 cancelled_by=who.subject)
    return await change_status(store, request, who, doc, event, Status.CANCELLED)


@router.put("/applications/{application_id}/preparation", tags=["exchanges"])
async def update_preparation(application_id: IdPath, body: PreparationIn, request: Request, who: Who,
                             store: Store) -> dict:
    """The visitor ticks off the preparation checklist (after the grant agreement is signed); the
    checklist as it stands changes nothing, and it changes at most 20 times (409 after)."""
    doc = await acting_as(store, who, application_id, "visitor_id", Role.VISITOR)
    ticked = followup.checklist(body.model_dump())
    if followup.unchanged(doc.get("preparation"), ticked) and doc["status"] == Status.AGREEMENT_SIGNED:
        return await exchange_out(store, who, doc)
    event = PreparationUpdated(application_id=application_id, call_id=doc["call_id"], updated_by=who.subject,
                               **ticked)

    def check(current: dict) -> None:
        require_status(current, Status.AGREEMENT_SIGNED)
        followup.check_revisions(current, "preparation.updated")
    return await record(store, request, who, doc, event, check)


@router.post("/applications/{application_id}/start", tags=["exchanges"])
async def start_exchange(application_id: IdPath, request: Request, who: Who, store: Store,
                         body: Annotated[ArrivalIn | None, Body()] = None) -> dict:
    """The host confirms the visitor arrived, on `actual_start` (default: the planned start)."""
    doc = await acting_as(store, who, application_id, "host_id", Role.HOST)
    actual_start = (body.actual_start if body else None) or date.fromisoformat(doc["planned_start"])
    event = ExchangeStarted(application_id=application_id, call_id=doc["call_id"], confirmed_by=who.subject,
                            actual_start=actual_start)
    return await change_status(store, request, who, doc, event, Status.IN_PROGRESS)


@router.post("/applications/{application_id}/complete", tags=["exchanges"])
async def complete_exchange(application_id: IdPath, request: Request, who: Who, store: Store,
                            body: Annotated[DepartureIn | None, Body()] = None) -> dict:
    """The host confirms the visitor left, on `actual_end` (default: the planned end); the actual
    working days are counted in the host country and the report falls due."""
    doc = await acting_as(store, who, application_id, "host_id", Role.HOST)
    call = await store.get(CALLS, doc["call_id"]) or {}
    actual_start = date.fromisoformat(doc.get("actual_start") or doc["planned_start"])
    actual_end = (body.actual_end if body else None) or date.fromisoformat(doc["planned_end"])
    figures = followup.actual_figures(actual_start, actual_end, doc["host"]["country"], doc["working_days"],
                                      call.get("report_due_days") or followup.DEFAULT_REPORT_DUE_DAYS)
    event = ExchangeCompleted(application_id=application_id, call_id=doc["call_id"], confirmed_by=who.subject,
                              **figures)
    return await change_status(store, request, who, doc, event, Status.COMPLETED)


@router.post("/applications/{application_id}/no-show", tags=["exchanges"])
async def report_no_show(application_id: IdPath, request: Request, who: Who, store: Store,
                         body: Annotated[ReasonIn | None, Body()] = None) -> dict:
    """The host reports the visitor never came: the exchange is cancelled (grants releases the grant)."""
    doc = await acting_as(store, who, application_id, "host_id", Role.HOST)
    event = ExchangeNoShow(application_id=application_id, call_id=doc["call_id"], reported_by=who.subject,
                           reason=body.reason if body else "")
    return await change_status(store, request, who, doc, event, Status.CANCELLED,
                               lambda d: require_status(d, Status.GRANT_COMMITTED, Status.AGREEMENT_SIGNED))


@router.post("/applications/{application_id}/report", tags=["exchanges"])
async def submit_report(application_id: IdPath, body: ReportIn, request: Request, who: Who, store: Store) -> dict:
    """The visitor reports on a completed exchange (again after changes were requested; late if overdue)."""
    doc = await acting_as(store, who, application_id, "visitor_id", Role.VISITOR)
    event = ReportSubmitted(application_id=application_id, call_id=doc["call_id"], submitted_by=who.subject,
                            organisation_id=doc["visitor_id"], late=bool(doc.get("report_overdue")),
                            **body.model_dump())
    return await change_status(store, request, who, doc, event, Status.REPORTED)


@router.post("/applications/{application_id}/host-feedback", tags=["exchanges"])
async def submit_host_feedback(application_id: IdPath, body: HostFeedbackIn, request: Request, who: Who,
                               store: Store) -> dict:
    """The host's feedback on the exchange (satisfaction 1-5, free text); the feedback as it stands
    changes nothing, and it changes at most 5 times (409 after)."""
    doc = await acting_as(store, who, application_id, "host_id", Role.HOST)
    if followup.unchanged(doc.get("host_feedback"), body.model_dump()):
        return await exchange_out(store, who, doc)
    event = HostFeedbackSubmitted(application_id=application_id, call_id=doc["call_id"], submitted_by=who.subject,
                                  organisation_id=doc["host_id"], **body.model_dump())

    def check(current: dict) -> None:
        followup.check_host_feedback(current)
        followup.check_revisions(current, "host_feedback.submitted")
    return await record(store, request, who, doc, event, check)


@router.post("/applications/{application_id}/report/review", tags=["exchanges"])
async def review_report(application_id: IdPath, body: ReviewIn, request: Request, who: Who, store: Store) -> dict:
    """The partnership (its programme manager or grant officer) accepts the report, which lets
    grants pay the balance, or asks for changes with the reasons."""
    doc = await visible_application(store, who, application_id)
    require_role_in(who, doc["partnership_id"], Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)
    if not body.accept:
        if not [r for r in body.reasons if r.strip()]:
            rules.refuse([rules.violation("reasons", "reasons_given", "say what the visitor should change")])
        event = ReportChangesRequested(application_id=application_id, call_id=doc["call_id"],
                                       requested_by=who.subject, reasons=body.reasons)
        return await change_status(store, request, who, doc, event, Status.COMPLETED, followup.check_reviewable)
    event = ReportAccepted(application_id=application_id, call_id=doc["call_id"], accepted_by=who.subject,
                           actual_start=doc.get("actual_start") or doc["planned_start"],
                           actual_end=doc.get("actual_end") or doc["planned_end"],
                           actual_working_days=doc.get("actual_working_days", doc["working_days"]),
                           planned_working_days=doc["working_days"])
    return await record(store, request, who, doc, event, followup.check_reviewable)


@router.post("/applications/{application_id}/close", tags=["exchanges"])
async def close_exchange(application_id: IdPath, request: Request, who: Who, store: Store,
                         body: Annotated[ReasonIn | None, Body()] = None) -> dict:
    """A programme manager closes the file (from reported or rejected)."""
    doc = await visible_application(store, who, application_id)
    require_role_in(who, doc["partnership_id"], Role.PROGRAMME_MANAGER)
    event = ExchangeClosed(application_id=application_id, call_id=doc["call_id"], closed_by=who.subject,
                           reason=body.reason if body else "")
    return await change_status(store, request, who, doc, event, Status.CLOSED)


async def acting_as(store: Storage, who: Principal, application_id: str, party: str, role: Role) -> dict:
    """The application, if the caller acts for its visitor or host (`party`) in that role."""
    doc = await visible_application(store, who, application_id)
    organisation = await store.get(ORGANISATIONS, doc[party])
    if not who.has(role) or organisation is None or not access.acts_for(who, organisation):
        raise Forbidden(f"only the {role} of this exchange may do this")
    return doc


async def change_status(store: Storage, request: Request, who: Principal, doc: dict, event: Any, target: Status,
                        also: Callable[[dict], None] | None = None) -> dict:
    def check(current: dict) -> None:
        domain.transition(current["status"], target)
        if also is not None:
            also(current)
    return await record(store, request, who, doc, event, check)


async def record(store: Storage, request: Request, who: Principal, doc: dict, event: Any,
                 check: Callable[[dict], None]) -> dict:
    """Fold the event into the exchange with its follow-up facts, if `check` allows it against
    the exchange as it stands (checked and changed in one conditional update). An event with
    personal texts travels with them sealed under their organisation's key, and is folded in clear."""
    travelling = await sealed(event, request.app.state.keys) if type(event) in SEALED_VERSIONS else event
    envelope = emit(request, travelling, subject=doc["_id"])
    clear = envelope.model_copy(update={"data": event.model_dump(mode="json"), "type": event.ce_type()})
    folded = await store.fold_event(doc["_id"], documents.entry(clear), event_id=envelope.id,
                                    events=(envelope,), check=check,
                                    fields=documents.follow_up_fields(type(event).name, clear.data))
    return await exchange_out(store, who, folded)


def require_status(doc: dict, *allowed: Status) -> None:
    if doc["status"] not in allowed:
        raise Conflict(f"this is done when the exchange is {' or '.join(allowed)}, not {doc['status']}")

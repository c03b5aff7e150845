"""The data subject's rights over HTTP (thin): erasure and export requests and their progress.

The data subject is an organisation's contact person, named by the organisation's id. A
programme manager of a partnership the organisation takes part in (or a programme-wide one),
or the organisation itself, may ask; the same may follow the request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from cx_shared.auth import Principal, principal
from cx_shared.errors import Forbidden, Gone, NotFound
from cx_shared.events.applications import PersonalDataErased, PersonalDataExportRequested
from cx_shared.personal_data.keys import Unreadable
from cx_shared.personal_data.record import RECORD
from cx_shared.http import emit
from cx_shared.store import public
from cx_shared.topics import SERVICES

from applications import access, documents
from applications.schemas import ErasureIn, IdPath
from applications.storage import ERASURES, EXPORTS, ORGANISATIONS, Storage

router = APIRouter(tags=["personal data"])
Who = Annotated[Principal, Depends(principal)]


def storage(request: Request) -> Storage:
    return request.app.state.storage


Store = Annotated[Storage, Depends(storage)]


async def subject_for(store: Storage, who: Principal, subject_id: str) -> dict:
    """The organisation, if the caller may exercise its contact person's rights."""
    organisation = await store.get(ORGANISATIONS, subject_id)
    if organisation is None:
        raise NotFound(f"no organisation {subject_id}")
    if not access.acts_for(who, organisation):
        raise Forbidden("only the organisation itself or a programme manager of its partnerships may do this")
    return organisation


def erasure_out(doc: dict) -> dict:
    reports = doc.get("reports") or {}
    services = {s: {"status": "complete", **{k: v for k, v in reports[s].items() if k in ("erased_at", "removed",
                                                                                             "kept")}}
                if s in reports else {"status": "pending"} for s in SERVICES}
    done = all(v["status"] == "complete" for v in services.values())
    result = {k: v for k, v in (public(doc) or {}).items() if k not in ("_id", "reports")}
    return {"erasure_id": doc["_id"], **result, "status": "complete" if done else "pending", "services": services}


@router.post("/personal-data/erasures", status_code=202)
async def request_erasure(body: ErasureIn, request: Request, who: Who, store: Store) -> dict:
    """Erase an organisation's contact person in every service (GDPR art. 17); follow it at
    `GET /personal-data/erasures/{erasure_id}`."""
    await subject_for(store, who, body.subject_id)
    event = PersonalDataErased(erasure_id=f"erasure-{uuid.uuid4().hex[:12]}", subject_id=body.subject_id,
                               requested_by=who.subject, requested_at=datetime.now(UTC))
    doc = documents.erasure(event)
    await store.create(ERASURES, doc, emit(request, event, subject=body.subject_id))
    return erasure_out(doc)


@router.post("/personal-data/exports", status_code=202)
async def request_export(body: ErasureIn, request: Request, who: Who, store: Store) -> dict:
    """Everything every service holds about an organisation's contact person (GDPR art. 15, 20); read
    it at `GET /personal-data/exports/{export_id}` once every service has answered."""
    await subject_for(store, who, body.subject_id)
    await request.app.state.keys.key_for(body.subject_id)  # each service seals its part under it
    event = PersonalDataExportRequested(export_id=f"export-{uuid.uuid4().hex[:12]}", subject_id=body.subject_id,
                                        requested_by=who.subject, requested_at=datetime.now(UTC))
    doc = documents.export(event)
    await store.create(EXPORTS, doc, emit(request, event, subject=body.subject_id))
    return {"export_id": event.export_id, "subject_id": body.subject_id, "status": "pending",
            "missing": list(SERVICES)}


@router.get("/personal-data/exports/{export_id}", responses={202: {"description": "not every service answered"},
                                                             410: {"description": "the subject was erased since"}})
async def get_export(export_id: IdPath, request: Request, who: Who, store: Store) -> Any:
    """The assembled export (GDPR art. 15): each service's part of the subject's data, as the subject
    may read it (no staff-only entry, nobody else's contact, report or mail), and the record of
    processing (what each service keeps, why, how long, who sees it); 202 naming the services still
    to answer."""
    doc = await store.get(EXPORTS, export_id)
    if doc is None or "subject_id" not in doc:
        raise NotFound(f"no export {export_id}")
    await subject_for(store, who, doc["subject_id"])
    parts = doc.get("parts") or {}
    if missing := [s for s in SERVICES if s not in parts]:
        return JSONResponse({"export_id": export_id, "subject_id": doc["subject_id"], "status": "pending",
                             "missing": missing}, status_code=202)
    try:
        opened = {s: await request.app.state.keys.open(doc["subject_id"], parts[s]) for s in SERVICES}
    except Unreadable as exc:
        raise Gone("the subject was erased: what this export held is gone") from exc
    return {"export_id": export_id, "subject_id": doc["subject_id"], "status": "complete", "services": opened,
            "processing": RECORD}


@router.get("/personal-data/erasures/{erasure_id}")
async def get_erasure(erasure_id: IdPath, who: Who, store: Store) -> dict:
    """Each service's part: pending, or complete with when, what it removed, what it kept and why."""
    doc = await store.get(ERASURES, erasure_id)
    if doc is None or "subject_id" not in doc:
        raise NotFound(f"no erasure {erasure_id}")
    await subject_for(store, who, doc["subject_id"])
    return erasure_out(doc)

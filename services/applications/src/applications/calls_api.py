"""A call changed before it opens (thin: authorize, merge, check the rules, store with its event).

Until its opening day nobody can apply to a call, so its dates, eligible countries and budget
may still change: each change is a CallUpdated (its whole state, one revision later) that
assessment, grants and notifications fold. Once the call has opened it is refused: from then
on people have applied under its terms (close it early or cancel it instead).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from cx_shared.auth import require_role_in
from cx_shared.errors import Conflict
from cx_shared.events.applications import CallUpdated
from cx_shared.http import emit
from cx_shared.vocabulary import Role

from applications import documents, rules
from applications.api import Store, Who, call_out, one_or_404, out, today
from applications.schemas import CallIn, CallPatch, IdPath
from applications.storage import CALLS

router = APIRouter(tags=["calls"])


@router.patch("/calls/{call_id}")
async def update_call(call_id: IdPath, body: CallPatch, request: Request, who: Who, store: Store) -> dict:
    """Change a call before it opens, made against `revision` (409 if it changed since, or once
    it has opened, closed or been cancelled); emits CallUpdated."""
    call = await one_or_404(store, CALLS, call_id, "call")
    require_role_in(who, call["partnership_id"], Role.PROGRAMME_MANAGER)
    revision = call.get("revision", 1)
    if call.get("status"):
        raise Conflict(f"the call was {call['status']}: it cannot change any more", field="status",
                       rule="before_opening")
    if call["opens_on"] <= today().isoformat():
        raise Conflict(f"the call opened on {call['opens_on']}: a call can change only before it opens "
                       "(close it early or cancel it instead)", field="opens_on", rule="before_opening")
    if body.revision != revision:
        raise Conflict(f"the call is at revision {revision}, not {body.revision}: reload it", field="revision")
    data = body.model_dump(mode="json")
    merged = {**out(call), **{k: data[k] for k in body.model_fields_set - {"revision"}}}
    as_published = CallIn.model_validate({k: merged[k] for k in CallIn.model_fields if k in merged})
    rules.refuse(rules.call_change_violations(as_published.model_dump(), today()))
    event = CallUpdated.model_validate({**merged, "revision": revision + 1, "updated_by": who.subject,
                                        "budget_change_cents": merged["budget_cents"] - call["budget_cents"]})
    fields = {k: v for k, v in documents.call(event).items() if k not in ("_id", "revision")}
    if not await store.change_call(call_id, revision, today().isoformat(), fields,
                                   emit(request, event, subject=call_id)):
        raise Conflict("the call changed, opened or ended meanwhile: reload it")
    return call_out(await one_or_404(store, CALLS, call_id, "call"))

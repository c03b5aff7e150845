"""The impact indicators over HTTP: JSON, CSV and a dashboard page (thin: read, compute, render).

Readable by programme managers and grant officers; a token scoped to partnerships sees only
theirs. The dashboard also takes the token as `?access_token=` so a browser can open the page
from a link (the page carries no script to add a header).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cx_shared.auth import Principal, authenticate, principal, require_role
from cx_shared.errors import Forbidden, Unauthorized
from cx_shared.vocabulary import Ecosystem, Role

from applications import dashboard, indicators
from applications.storage import ApplicationFilter, Storage

router = APIRouter(tags=["indicators"])
READERS = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)


def page_principal(request: Request, access_token: str | None = None) -> Principal:
    """The bearer token from the header, else from `?access_token=` (links opened in a browser)."""
    if request.headers.get("authorization"):
        return principal(request)
    if not access_token:
        raise Unauthorized("a bearer token is required (Authorization header or ?access_token=)")
    return authenticate(access_token, request.app.state.settings)


async def compute(request: Request, who: Principal, partnership_id: str | None, call_id: str | None,
                  ecosystem: Ecosystem | None, country: str | None) -> dict:
    require_role(who, *READERS)
    everything = who.programme_wide
    if partnership_id and not who.in_partnership(partnership_id):
        raise Forbidden("you do not follow this partnership")
    scope = ApplicationFilter(partnership_ids=None if everything else set(who.partnership_ids),
                              call_id=call_id, partnership_id=partnership_id, ecosystem=ecosystem,
                              country=country.upper() if country else None)
    storage: Storage = request.app.state.storage
    result = indicators.compute(await storage.exchanges_for_indicators(scope))
    return {"filters": {"partnership_id": partnership_id, "call_id": call_id,
                        "ecosystem": str(ecosystem) if ecosystem else None, "country": scope.country}, **result}


@router.get("/indicators")
async def get_indicators(request: Request, who: Annotated[Principal, Depends(principal)],
                         partnership_id: str | None = None, call_id: str | None = None,
                         ecosystem: Ecosystem | None = None, country: str | None = None) -> dict:
    """Impact indicators per partnership, call, ecosystem and country (any combination)."""
    return await compute(request, who, partnership_id, call_id, ecosystem, country)


@router.get("/indicators.csv")
async def indicators_csv(request: Request, who: Annotated[Principal, Depends(principal)],
                         partnership_id: str | None = None, call_id: str | None = None,
                         ecosystem: Ecosystem | None = None, country: str | None = None) -> Response:
    """The same indicators as CSV rows `indicator,dimension,value` for the programme's reporting."""
    result = await compute(request, who, partnership_id, call_id, ecosystem, country)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["indicator", "dimension", "value"])
    writer.writerows([("" if v is None else v) if i == 2 else v for i, v in enumerate(row)]
                     for row in indicators.rows(result))
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="indicators.csv"'})


@router.get("/indicators/dashboard", response_class=HTMLResponse)
async def indicators_dashboard(request: Request, who: Annotated[Principal, Depends(page_principal)],
                               partnership_id: str | None = None, call_id: str | None = None,
                               ecosystem: Ecosystem | None = None, country: str | None = None) -> HTMLResponse:
    """The indicators as a page with charts rendered here as inline SVG."""
    result = await compute(request, who, partnership_id, call_id, ecosystem, country)
    return HTMLResponse(dashboard.page(result, {k: v for k, v in result["filters"].items() if v}),
                        headers={"referrer-policy": "no-referrer", "cache-control": "no-store"})

"""The impact indicators over HTTP: JSON, CSV and a dashboard page (thin: read, compute, render).

Readable by programme managers and grant officers; a token scoped to partnerships sees only
theirs. A token never travels in a URL (URLs end up in logs and browser histories): a browser
opens the dashboard with a one-time link, asked for with the token in the Authorization
header; the link works once, for a minute, and shows the page as that token would.
"""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cx_shared.auth import Principal, principal, require_role
from cx_shared.errors import Forbidden, Unauthorized
from cx_shared.vocabulary import Ecosystem, Role

from applications import access, dashboard, indicators
from applications.schemas import CountryFilter, IdFilter
from applications.storage import ApplicationFilter, Storage

router = APIRouter(tags=["indicators"])
READERS = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)
LINK_LIFETIME = timedelta(seconds=60)
Link = Annotated[str | None, Query(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$",
                                   description="a one-time link id from POST /indicators/dashboard/links")]


async def page_principal(request: Request, link: Link = None) -> Principal:
    """The bearer token from the header, else the one who asked for this one-time link."""
    if request.headers.get("authorization") or not link:
        return principal(request)
    storage: Storage = request.app.state.storage
    kept = await storage.take_dashboard_link(link)
    if kept is None or kept["expires_at"] < datetime.now(UTC):
        raise Unauthorized("this dashboard link was used already or has expired: ask for a new one")
    return Principal.model_validate(kept["principal"])


async def compute(request: Request, who: Principal, partnership_id: str | None, call_id: str | None,
                  ecosystem: Ecosystem | None, country: str | None) -> dict:
    require_role(who, *READERS)
    everything = access.programme_wide(who)
    if partnership_id and not who.has_in(partnership_id, *READERS):
        raise Forbidden("you do not follow this partnership")
    scope = ApplicationFilter(partnership_ids=None if everything else set(who.partnerships_with(*READERS)),
                              call_id=call_id, partnership_id=partnership_id, ecosystem=ecosystem,
                              country=country.upper() if country else None)
    storage: Storage = request.app.state.storage
    result = indicators.compute(await storage.exchanges_for_indicators(scope))
    return {"filters": {"partnership_id": partnership_id, "call_id": call_id,
                        "ecosystem": str(ecosystem) if ecosystem else None, "country": scope.country}, **result}


@router.get("/indicators")
async def get_indicators(request: Request, who: Annotated[Principal, Depends(principal)],
                         partnership_id: IdFilter = None, call_id: IdFilter = None,
                         ecosystem: Ecosystem | None = None, country: CountryFilter = None) -> dict:
    """Impact indicators per partnership, call, ecosystem and country (any combination)."""
    return await compute(request, who, partnership_id, call_id, ecosystem, country)


@router.get("/indicators.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "rows `indicator,dimension,value`"}})
async def indicators_csv(request: Request, who: Annotated[Principal, Depends(principal)],
                         partnership_id: IdFilter = None, call_id: IdFilter = None,
                         ecosystem: Ecosystem | None = None, country: CountryFilter = None) -> Response:
    """The same indicators as CSV rows `indicator,dimension,value` for the programme's reporting."""
    result = await compute(request, who, partnership_id, call_id, ecosystem, country)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["indicator", "dimension", "value"])
    writer.writerows([("" if v is None else v) if i == 2 else v for i, v in enumerate(row)]
                     for row in indicators.rows(result))
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="indicators.csv"'})


@router.post("/indicators/dashboard/links", status_code=201)
async def dashboard_link(request: Request, who: Annotated[Principal, Depends(principal)]) -> dict:
    """A link to open the dashboard in a browser once, within a minute, as the caller."""
    require_role(who, *READERS)
    link = secrets.token_urlsafe(32)
    storage: Storage = request.app.state.storage
    await storage.keep_dashboard_link(link, who.model_dump(mode="json"), datetime.now(UTC) + LINK_LIFETIME)
    return {"url": f"/indicators/dashboard?link={link}", "expires_in_seconds": int(LINK_LIFETIME.total_seconds())}


@router.get("/indicators/dashboard", response_class=HTMLResponse)
async def indicators_dashboard(request: Request, who: Annotated[Principal, Depends(page_principal)],
                               partnership_id: IdFilter = None, call_id: IdFilter = None,
                               ecosystem: Ecosystem | None = None, country: CountryFilter = None) -> HTMLResponse:
    """The indicators as a page with charts rendered here as inline SVG."""
    result = await compute(request, who, partnership_id, call_id, ecosystem, country)
    return HTMLResponse(dashboard.page(result, {k: v for k, v in result["filters"].items() if v}),
                        headers={"referrer-policy": "no-referrer", "cache-control": "no-store"})

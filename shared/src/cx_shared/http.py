"""The HTTP edge every service shares: problem details, correlation ids, health,
AsyncAPI docs and (local mode only) a development token issuer."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cx_shared.auth import DEV_ISSUER, issue_token
from cx_shared.envelope import Envelope
from cx_shared.errors import NotFound, Problem
from cx_shared.events import Event
from cx_shared.logging import bind_contextvars, clear_contextvars, get_logger
from cx_shared.vocabulary import Role

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


def problem_response(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.body(str(request.url.path)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "rule": e["type"],
                   "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(422, {"type": "https://clusterxchange.eu/problems/validation-failed",
                                      "title": "Validation failed", "status": 422, "detail": detail,
                                      "instance": str(request.url.path), "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(exc.status_code, {"type": "about:blank", "title": str(exc.detail),
                                                  "status": exc.status_code, "instance": str(request.url.path)})


def install_correlation(app: FastAPI) -> None:
    @app.middleware("http")
    async def _correlate(request: Request, call_next):
        clear_contextvars()
        correlation_id = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        request.state.correlation_id = correlation_id
        bind_contextvars(correlation_id=correlation_id, service=request.app.state.settings.service_name)
        response = await call_next(request)
        response.headers["x-correlation-id"] = correlation_id
        return response


def emit(request: Request, event: Event, subject: str) -> Envelope:
    """An envelope for an event caused by this HTTP request, in its correlation."""
    return Envelope.wrap(event, source=request.app.state.settings.source, subject=subject,
                         correlation_id=getattr(request.state, "correlation_id", None))


class DevTokenRequest(BaseModel):
    subject: str = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)
    organisation_id: str | None = None
    partnership_ids: list[str] = Field(default_factory=list)
    programme: bool = False  # a programme-wide manager


def ops_router(service: Any) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/health/ready")
    async def ready() -> Response:
        problems = await service.readiness_problems()
        status = 200 if not problems else 503
        return JSONResponse({"status": "ready" if not problems else "not ready", "problems": problems},
                            status_code=status)

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> Response:
        return Response(service.asyncapi().to_json(), media_type="application/json")

    @router.get("/asyncapi", response_class=HTMLResponse)
    async def asyncapi_html() -> str:
        from faststream.specification.asyncapi.site import get_asyncapi_html
        return get_asyncapi_html(service.asyncapi(), try_it_out_path=None)

    @router.post("/dev/tokens")
    async def dev_token(body: DevTokenRequest, request: Request) -> dict[str, str]:
        settings = request.app.state.settings
        if not settings.dev_tokens:
            raise NotFound("development tokens are disabled (DEV_TOKENS=false)")
        token = issue_token(settings.jwt_secret, DEV_ISSUER, body.subject, body.roles,
                            organisation_id=body.organisation_id, partnership_ids=body.partnership_ids,
                            programme=body.programme)
        return {"access_token": token, "token_type": "bearer"}

    return router

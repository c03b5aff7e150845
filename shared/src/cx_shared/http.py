"""The HTTP edge every service shares: problem details, correlation ids, a request-body size
limit, health, AsyncAPI docs and (local mode only) a development token issuer."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cx_shared import metrics
from cx_shared.auth import DEV_ISSUER, issue_token
from cx_shared.catalog.page import render as catalog_page
from cx_shared.envelope import Envelope
from cx_shared.errors import NotFound, Problem, TooLarge
from cx_shared.events import Event
from cx_shared.logging import bind_contextvars, clear_contextvars, get_logger
from cx_shared.vocabulary import Role

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


# The programme's ids (org-…, call-…, UUIDs) in paths and filters: bounded, plain ASCII. Anything
# else is a 422 naming the parameter (a NUL cannot even be stored by the local database).
ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
IdPath = Annotated[str, Path(min_length=1, max_length=100, pattern=ID_PATTERN)]
IdFilter = Annotated[str | None, Query(min_length=1, max_length=100, pattern=ID_PATTERN)]

# The programme's dates: a year 9999 is a mistake or an attack, never an exchange. JSON Schema has
# no minimum for a date, so the document also states the bounds as a pattern of exactly the days
# between them (leap days included), which validators and test generators honour, and as
# formatMinimum/formatMaximum for readers. Only YYYY-MM-DD, as the format says (pydantic alone
# would take a date-time at midnight; strict mode would refuse every string FastAPI hands it).
FIRST_DAY, LAST_DAY = date(2020, 1, 1), date(2099, 12, 31)
DAY_PATTERN = (r"^(?:20[2-9][0-9]-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
               r"|(?:0[13578]|1[02])-31)|20(?:[2468][048]|[3579][26])-02-29)$")


def _calendar_day(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise PydanticCustomError("date_format", "a date is written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_calendar_day), Field(ge=FIRST_DAY, le=LAST_DAY, json_schema_extra={
    "pattern": DAY_PATTERN, "formatMinimum": str(FIRST_DAY), "formatMaximum": str(LAST_DAY)})]

def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.body(str(request.url.path)), exc.headers)

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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route matched
            headers["Allow"] = allowed_methods(request.app, request.url.path)
        return problem_response(exc.status_code, {"type": "about:blank", "title": str(exc.detail),
                                                  "status": exc.status_code, "instance": str(request.url.path)},
                                headers)


def allowed_methods(app: FastAPI, path: str) -> str:
    """The methods some route serves at this path (RFC 9110's Allow)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):  # included routers' routes too
        if route.methods and route.path and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


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


class BodyLimit:
    """Refuses a request body of more than `limit` bytes with 413, before anything reads it
    (no parsing, no authentication, no database): a declared Content-Length at once, a chunked
    body as soon as it passes the limit. What is read (never more than the limit) is handed to
    the application as one message. The rest of a refused body is read and dropped, up to
    DRAIN more bytes, so that the client reads the 413 (a connection closed on unread data is
    reset, and the answer lost with it); beyond that the connection is simply closed."""

    DRAIN = 1024 * 1024

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            drain = declared.isdigit() and int(declared) <= self.limit + self.DRAIN
            return await self._refuse(scope, receive, send, more=drain)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._refuse(scope, receive, send, more=message.get("more_body", False))
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal whole
            message, whole = whole, None
            return message if message is not None else await receive()
        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, more: bool) -> None:
        dropped = 0
        while more and dropped <= self.DRAIN:
            message = await receive()
            dropped += len(message.get("body", b""))
            more = message["type"] == "http.request" and message.get("more_body", False)
        problem = TooLarge(f"the request body is larger than {self.limit} bytes", field="body", rule="max_bytes")
        response = problem_response(problem.status, problem.body(scope.get("path")))
        response.headers["connection"] = "close"  # what is left of the body is never read
        await response(scope, receive, send)


def install_body_limit(app: FastAPI, limit: int) -> None:
    """Outermost: added last, it runs before every other middleware and route."""
    app.add_middleware(BodyLimit, limit=limit)


def emit(request: Request, event: Event, subject: str) -> Envelope:
    """An envelope for an event caused by this HTTP request, in its correlation."""
    return Envelope.wrap(event, source=request.app.state.settings.source, subject=subject,
                         correlation_id=getattr(request.state, "correlation_id", None))


class DevTokenRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    organisation_id: str | None = Field(default=None, max_length=100)
    partnership_ids: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    # staff roles per partnership; without it, the staff roles among `roles` in each of `partnership_ids`
    partnership_roles: dict[Annotated[str, Field(max_length=100)], list[Role]] | None = Field(
        default=None, max_length=50)
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

    @router.get("/metrics", response_class=Response, responses={200: {
        "description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus_metrics() -> Response:
        """Prometheus text format, without authentication (scrapers carry no token); see the README
        (Monitoring) for keeping it off the public ingress."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> dict[str, Any]:
        """The event catalog of the whole system (AsyncAPI 3.0): every topic and event."""
        return service.asyncapi()

    @router.get("/asyncapi", response_class=HTMLResponse)
    async def asyncapi_html() -> str:
        return catalog_page(service.asyncapi())

    @router.post("/dev/tokens")
    async def dev_token(body: DevTokenRequest, request: Request) -> dict[str, str]:
        settings = request.app.state.settings
        if not settings.dev_tokens:
            raise NotFound("development tokens are disabled (DEV_TOKENS=false)")
        token = issue_token(settings.jwt_secret, DEV_ISSUER, body.subject, body.roles,
                            organisation_id=body.organisation_id, partnership_ids=body.partnership_ids,
                            partnership_roles=body.partnership_roles, programme=body.programme)
        return {"access_token": token, "token_type": "bearer"}

    return router

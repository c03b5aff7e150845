"""HTTP API: the mail log, staff recipients (assessors, grant officers), unsubscribe, and webhook
subscriptions with their delivery logs. Thin: HTTP -> domain -> storage.

Staff see what belongs to their partnerships (the token's ``partnerships``); a programme manager
without partnerships is programme-wide and sees everything. Lists filter in the query."""

from __future__ import annotations

import secrets
from html import escape
from typing import Annotated, Literal

from cx_shared.auth import Principal, principal, require_role
from cx_shared.errors import Forbidden, Invalid, NotFound
from cx_shared.events import all_event_classes
from cx_shared.http import IdFilter, IdPath
from cx_shared.store import public
from cx_shared.vocabulary import Role
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, EmailStr, Field, HttpUrl

from notifications import targets
from notifications.domain import language, within
from notifications.storage import Storage

router = APIRouter()
Who = Annotated[Principal, Depends(principal)]
EmailStatus = Literal["pending", "sending", "sent", "failed", "suppressed"]  # storage's PENDING...SUPPRESSED
STAFF_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER, Role.ASSESSOR)
SUBSCRIBER_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def scope_of(who: Principal) -> list[str] | None:
    """The partnerships whose records the caller may see; None for a programme-wide manager."""
    if who.programme_wide:
        return None
    return list(who.partnership_ids)


def in_scope(who: Principal, partnership_id: str | None) -> bool:
    scope = scope_of(who)
    return scope is None or partnership_id in scope


def named(doc: dict | None, id_name: str) -> dict | None:
    """A document for the API: plumbing fields dropped, ``_id`` under its own name."""
    if doc is None:
        return None
    shown = public(doc)
    return {id_name: shown.pop("_id"), **shown}


# ---- mail log ------------------------------------------------------------------------------------

@router.get("/notifications", tags=["email"])
async def list_notifications(request: Request, who: Who, application_id: IdFilter = None,
                             status: EmailStatus | None = None) -> list[dict]:
    """Emails planned, sent, suppressed or failed, oldest first (staff only)."""
    require_role(who, *STAFF_ROLES)
    found = await storage_of(request).find_notifications(scope_of(who), application_id, status)
    return [named(d, "notification_id") for d in found]


@router.get("/notifications/{notification_id}", tags=["email"])
async def get_notification(notification_id: IdPath, request: Request, who: Who) -> dict:
    require_role(who, *STAFF_ROLES)
    doc = await storage_of(request).notification(notification_id)
    if doc is None:
        raise NotFound(f"no notification {notification_id}")
    if not in_scope(who, doc.get("partnership_id")):
        raise Forbidden("this email belongs to another partnership")
    return named(doc, "notification_id")


@router.get("/applications/{application_id}/reminders", tags=["email"])
async def list_reminders(application_id: IdPath, request: Request, who: Who) -> list[dict]:
    require_role(who, *STAFF_ROLES)
    return [named(d, "reminder_id") for d in await storage_of(request).find_reminders(scope_of(who), application_id)]


# ---- staff recipients --------------------------------------------------------------------------

class StaffMember(BaseModel):
    partnership_id: str = Field(min_length=1)
    role: Literal["assessor", "grant_officer"]
    name: str = Field(min_length=1)
    email: EmailStr
    language: str = "en"


@router.post("/staff", status_code=201, tags=["email"])
async def add_staff(body: StaffMember, request: Request, who: Who) -> dict:
    """Register an assessor or grant officer of a partnership as a recipient (programme manager)."""
    require_role(who, Role.PROGRAMME_MANAGER)
    if not who.in_partnership(body.partnership_id):
        raise Forbidden(f"not a manager of partnership {body.partnership_id}")
    member = {**body.model_dump(), "language": language(body.language)}
    return named(await storage_of(request).add_staff(member), "staff_id")


@router.get("/staff", tags=["email"])
async def list_staff(partnership_id: str, request: Request, who: Who) -> list[dict]:
    require_role(who, *STAFF_ROLES)
    if not in_scope(who, partnership_id):
        raise Forbidden(f"not staff of partnership {partnership_id}")
    return [named(d, "staff_id") for d in await storage_of(request).list_staff(partnership_id)]


# ---- unsubscribe ---------------------------------------------------------------------------------

Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, tags=["email"])
async def unsubscribe_page(token: Token, request: Request) -> str:
    """The link in optional emails: a page with a button. A GET changes nothing, because mail
    scanners follow links; the button (and mail clients' one-click, RFC 8058) POSTs."""
    await _address(request, token)
    return (f'<form method="post" action="/unsubscribe/{escape(token)}">'
            "<p>Stop optional ClusterXchange messages? Decisions and payments are always sent.</p>"
            '<button type="submit">Unsubscribe</button></form>')


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, tags=["email"])
async def unsubscribe(token: Token, request: Request) -> str:
    """Stop optional messages to the token's address; decisions and money still go."""
    await storage_of(request).opt_out(await _address(request, token))
    return "<p>You will no longer receive optional messages. Decisions and payments are always sent.</p>"


async def _address(request: Request, token: str) -> str:
    """The token is the proof (no login is needed to unsubscribe): an opaque random id we stored,
    in the path, so that no address travels in the URL and no query string reaches access logs."""
    address = await storage_of(request).address_of_unsubscribe_token(token)
    if address is None:
        raise NotFound("this unsubscribe link is not valid")
    return address


@router.post("/resubscribe/{token}", tags=["email"])
async def resubscribe(token: Token, request: Request) -> dict:
    address = await _address(request, token)
    await storage_of(request).opt_in(address)
    return {"email": address, "optional_messages": True}


# ---- webhook subscriptions ---------------------------------------------------------------------

class NewSubscription(BaseModel):
    url: HttpUrl = Field(description="https, on a public address (checked again at every delivery)")
    event_types: list[str] = Field(min_length=1, max_length=100, description="CloudEvents types, short names "
                                   "(e.g. grant.committed) or '*' for every event")
    partnership_ids: list[str] = Field(default_factory=list, max_length=50,
                                       description="the partnerships whose events it receives (you must be staff "
                                                   "of each); contact data is left out")
    programme_wide: bool = Field(default=False, description="every partnership's events, with contact data "
                                 "(programme-wide managers only); exclusive with partnership_ids")
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="generated when omitted")
    owner_email: EmailStr
    owner_name: str | None = Field(default=None, max_length=200)
    owner_language: str = Field(default="en", max_length=35)
    description: str = Field(default="", max_length=2000)


class Rotation(BaseModel):
    grace_seconds: float | None = Field(default=None, ge=0, le=30 * 24 * 3600,
                                        description="how long the previous secret still signs (default: "
                                                    "WEBHOOK_SECRET_GRACE_SECONDS)")


def _known_types() -> set[str]:
    return {"*"} | {c.ce_type() for c in all_event_classes()} | {c.name for c in all_event_classes()}


def _shown(sub: dict) -> dict:
    return {k: v for k, v in named(sub, "subscription_id").items() if k not in ("secret", "previous_secret")}


def _check_scope(body: NewSubscription, who: Principal) -> None:
    if body.programme_wide == bool(body.partnership_ids):
        raise Invalid("name the partnerships whose events it receives, or programme_wide (not both)",
                      field="partnership_ids", rule="scope_required")
    if body.programme_wide and scope_of(who) is not None:
        raise Forbidden("only a programme-wide manager may subscribe to every partnership's events")
    foreign = [p for p in body.partnership_ids if not in_scope(who, p)]
    if foreign:
        raise Forbidden(f"not staff of partnership {', '.join(foreign)}")


async def _check_target(url: str, request: Request) -> None:
    """Refuse at once what every delivery would refuse; a name that does not resolve now is let
    through (the delivery checks it again, and may find it then)."""
    try:
        await targets.checked(url, request.app.state.settings)
    except targets.RefusedTarget as exc:
        raise Invalid(str(exc), field="url", rule="public_https_target") from exc
    except targets.Unresolved:
        pass


@router.post("/webhooks/subscriptions", status_code=201, tags=["webhooks"])
async def subscribe(body: NewSubscription, request: Request, who: Who) -> dict:
    """Subscribe a URL to event types of some partnerships (or programme-wide). The secret is
    returned once, here; keep it to verify signatures."""
    require_role(who, *SUBSCRIBER_ROLES)
    unknown = sorted(set(body.event_types) - _known_types())
    if unknown:
        raise Invalid(f"unknown event types: {', '.join(unknown)}", field="event_types", rule="known_event_type")
    _check_scope(body, who)
    await _check_target(str(body.url), request)
    secret = body.secret or secrets.token_urlsafe(32)
    sub = await storage_of(request).add_subscription(
        {**body.model_dump(mode="json", exclude={"secret"}), "partnership_ids": sorted(set(body.partnership_ids)),
         "owner_language": language(body.owner_language), "secret": secret, "owner": who.subject})
    return {**_shown(sub), "secret": secret}


async def _owned(subscription_id: str, request: Request, who: Principal) -> dict:
    """A subscription the caller may manage: within their partnerships, and their own unless a manager."""
    require_role(who, *SUBSCRIBER_ROLES)
    sub = await storage_of(request).subscription(subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id}")
    if not within(scope_of(who), sub):
        raise Forbidden("this subscription hears of partnerships that are not yours")
    if sub["owner"] != who.subject and not who.has(Role.PROGRAMME_MANAGER):
        raise Forbidden("this subscription belongs to someone else")
    return sub


@router.get("/webhooks/subscriptions", tags=["webhooks"])
async def list_subscriptions(request: Request, who: Who) -> list[dict]:
    """Your subscriptions; a programme manager sees all those within his partnerships."""
    require_role(who, *SUBSCRIBER_ROLES)
    owner = None if who.has(Role.PROGRAMME_MANAGER) else who.subject
    return [_shown(s) for s in await storage_of(request).find_subscriptions(scope_of(who), owner)]


@router.get("/webhooks/subscriptions/{subscription_id}", tags=["webhooks"])
async def get_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    return _shown(await _owned(subscription_id, request, who))


@router.get("/webhooks/subscriptions/{subscription_id}/deliveries", tags=["webhooks"])
async def delivery_log(subscription_id: IdPath, request: Request, who: Who) -> list[dict]:
    """Every delivery with each attempt: time, HTTP status or a generic error, duration."""
    await _owned(subscription_id, request, who)
    return [named(d, "delivery_id") for d in await storage_of(request).find_deliveries(subscription_id)]


@router.post("/webhooks/subscriptions/{subscription_id}/enable", tags=["webhooks"])
async def enable_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    """Re-enable a disabled subscription; its suspended deliveries are retried."""
    await _owned(subscription_id, request, who)
    await storage_of(request).enable_subscription(subscription_id)
    return _shown(await storage_of(request).subscription(subscription_id))


@router.post("/webhooks/subscriptions/{subscription_id}/disable", tags=["webhooks"])
async def disable_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    """Stop deliveries; the pending ones are suspended until it is enabled again."""
    await _owned(subscription_id, request, who)
    await storage_of(request).disable_subscription(subscription_id)
    return _shown(await storage_of(request).subscription(subscription_id))


@router.post("/webhooks/subscriptions/{subscription_id}/rotation", tags=["webhooks"])
async def rotate_secret(subscription_id: IdPath, request: Request, who: Who, body: Rotation | None = None) -> dict:
    """A new signing secret, returned once; the previous one goes on signing for the grace period
    (each delivery then carries both signatures), so the subscriber can switch without a gap."""
    await _owned(subscription_id, request, who)
    grace = request.app.state.settings.webhook_secret_grace_seconds
    grace = grace if body is None or body.grace_seconds is None else body.grace_seconds
    secret = secrets.token_urlsafe(32)
    await storage_of(request).rotate_secret(subscription_id, secret, grace)
    return {**_shown(await storage_of(request).subscription(subscription_id)), "secret": secret}


@router.delete("/webhooks/subscriptions/{subscription_id}", status_code=204, tags=["webhooks"])
async def unsubscribe_webhook(subscription_id: IdPath, request: Request, who: Who) -> Response:
    await storage_of(request).delete_subscription(await _owned(subscription_id, request, who))
    return Response(status_code=204)

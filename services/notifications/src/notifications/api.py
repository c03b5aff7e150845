"""HTTP API: the mail log, staff recipients (assessors, grant officers), unsubscribe, and webhook
subscriptions with their delivery logs. Thin: HTTP -> domain -> storage."""

from __future__ import annotations

import secrets
from html import escape
from typing import Annotated, Literal

from cx_shared.auth import Principal, principal, require_role
from cx_shared.errors import Forbidden, Invalid, NotFound
from cx_shared.events import all_event_classes
from cx_shared.store import public
from cx_shared.vocabulary import Role
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, EmailStr, Field, HttpUrl

from notifications.domain import address_of_unsubscribe_token, language, private_address
from notifications.storage import Storage

router = APIRouter()
Who = Annotated[Principal, Depends(principal)]
STAFF_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER, Role.ASSESSOR)
SUBSCRIBER_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def named(doc: dict | None, id_name: str) -> dict | None:
    """A document for the API: plumbing fields dropped, ``_id`` under its own name."""
    if doc is None:
        return None
    shown = public(doc)
    return {id_name: shown.pop("_id"), **shown}


# ---- mail log ------------------------------------------------------------------------------------

@router.get("/notifications", tags=["email"])
async def list_notifications(request: Request, who: Who, application_id: str | None = None,
                             status: str | None = None) -> list[dict]:
    """Emails planned, sent, suppressed or failed, oldest first (staff only)."""
    require_role(who, *STAFF_ROLES)
    return [named(d, "notification_id") for d in await storage_of(request).find_notifications(application_id, status)]


@router.get("/notifications/{notification_id}", tags=["email"])
async def get_notification(notification_id: str, request: Request, who: Who) -> dict:
    require_role(who, *STAFF_ROLES)
    doc = await storage_of(request).notification(notification_id)
    if doc is None:
        raise NotFound(f"no notification {notification_id}")
    return named(doc, "notification_id")


@router.get("/applications/{application_id}/reminders", tags=["email"])
async def list_reminders(application_id: str, request: Request, who: Who) -> list[dict]:
    require_role(who, *STAFF_ROLES)
    return [named(d, "reminder_id") for d in await storage_of(request).find_reminders(application_id)]


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
    return [named(d, "staff_id") for d in await storage_of(request).list_staff(partnership_id)]


# ---- unsubscribe ---------------------------------------------------------------------------------

@router.get("/unsubscribe", response_class=HTMLResponse, tags=["email"])
async def unsubscribe_page(token: str, request: Request) -> str:
    """The link in optional emails: a page with a button. A GET changes nothing, because mail
    scanners follow links; the button (and mail clients' one-click, RFC 8058) POSTs."""
    _address(request, token)
    return (f'<form method="post" action="/unsubscribe?token={escape(token)}">'
            "<p>Stop optional ClusterXchange messages? Decisions and payments are always sent.</p>"
            '<button type="submit">Unsubscribe</button></form>')


@router.post("/unsubscribe", response_class=HTMLResponse, tags=["email"])
async def unsubscribe(token: str, request: Request) -> str:
    """Stop optional messages to the token's address; decisions and money still go."""
    await storage_of(request).opt_out(_address(request, token))
    return "<p>You will no longer receive optional messages. Decisions and payments are always sent.</p>"


def _address(request: Request, token: str) -> str:
    """The signed token is the proof: no login is needed to unsubscribe."""
    address = address_of_unsubscribe_token(request.app.state.settings.jwt_secret, token)
    if address is None:
        raise Invalid("this unsubscribe link is not valid", field="token", rule="signature")
    return address


@router.post("/resubscribe", tags=["email"])
async def resubscribe(token: str, request: Request) -> dict:
    address = _address(request, token)
    await storage_of(request).opt_in(address)
    return {"email": address, "optional_messages": True}


# ---- webhook subscriptions ---------------------------------------------------------------------

class NewSubscription(BaseModel):
    url: HttpUrl
    event_types: list[str] = Field(min_length=1, description="CloudEvents types, short names "
                                   "(e.g. grant.committed) or '*' for every event")
    secret: str | None = Field(default=None, min_length=16, description="generated when omitted")
    owner_email: EmailStr
    owner_name: str | None = None
    owner_language: str = "en"
    description: str = ""


def _known_types() -> set[str]:
    return {"*"} | {c.ce_type() for c in all_event_classes()} | {c.name for c in all_event_classes()}


def _shown(sub: dict) -> dict:
    return {k: v for k, v in named(sub, "subscription_id").items() if k != "secret"}


@router.post("/webhooks/subscriptions", status_code=201, tags=["webhooks"])
async def subscribe(body: NewSubscription, request: Request, who: Who) -> dict:
    """Subscribe a URL to event types. The secret is returned once, here; keep it to verify signatures."""
    require_role(who, *SUBSCRIBER_ROLES)
    unknown = sorted(set(body.event_types) - _known_types())
    if unknown:
        raise Invalid(f"unknown event types: {', '.join(unknown)}", field="event_types", rule="known_event_type")
    if not request.app.state.settings.webhook_allow_private_urls and private_address(body.url.host or ""):
        raise Invalid("webhook URLs must not point at private or loopback addresses", field="url",
                      rule="public_address")
    secret = body.secret or secrets.token_urlsafe(32)
    sub = await storage_of(request).add_subscription(
        {**body.model_dump(mode="json", exclude={"secret"}), "owner_language": language(body.owner_language),
         "secret": secret, "owner": who.subject})
    return {**_shown(sub), "secret": secret}


async def _owned(subscription_id: str, request: Request, who: Principal) -> dict:
    require_role(who, *SUBSCRIBER_ROLES)
    sub = await storage_of(request).subscription(subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id}")
    if sub["owner"] != who.subject and not who.has(Role.PROGRAMME_MANAGER):
        raise Forbidden("this subscription belongs to someone else")
    return sub


@router.get("/webhooks/subscriptions", tags=["webhooks"])
async def list_subscriptions(request: Request, who: Who) -> list[dict]:
    """Your subscriptions (a programme manager sees all)."""
    require_role(who, *SUBSCRIBER_ROLES)
    owner = None if who.has(Role.PROGRAMME_MANAGER) else who.subject
    return [_shown(s) for s in await storage_of(request).find_subscriptions(owner)]


@router.get("/webhooks/subscriptions/{subscription_id}", tags=["webhooks"])
async def get_subscription(subscription_id: str, request: Request, who: Who) -> dict:
    return _shown(await _owned(subscription_id, request, who))


@router.get("/webhooks/subscriptions/{subscription_id}/deliveries", tags=["webhooks"])
async def delivery_log(subscription_id: str, request: Request, who: Who) -> list[dict]:
    """Every delivery with each attempt: time, HTTP status or error, duration."""
    await _owned(subscription_id, request, who)
    return [named(d, "delivery_id") for d in await storage_of(request).find_deliveries(subscription_id)]


@router.post("/webhooks/subscriptions/{subscription_id}/enable", tags=["webhooks"])
async def enable_subscription(subscription_id: str, request: Request, who: Who) -> dict:
    """Re-enable a disabled subscription; its suspended deliveries are retried."""
    await _owned(subscription_id, request, who)
    await storage_of(request).enable_subscription(subscription_id)
    return _shown(await storage_of(request).subscription(subscription_id))


@router.delete("/webhooks/subscriptions/{subscription_id}", status_code=204, tags=["webhooks"])
async def unsubscribe_webhook(subscription_id: str, request: Request, who: Who) -> Response:
    await _owned(subscription_id, request, who)
    await storage_of(request).delete_subscription(subscription_id)
    return Response(status_code=204)

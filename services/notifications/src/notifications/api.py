"""HTTP API: the mail log, staff recipients (assessors, grant officers), unsubscribe, and webhook
subscriptions with their delivery logs. Thin: HTTP -> domain -> storage.

Staff see what belongs to the partnerships in which they hold a staff role (roles are held per
partnership: an assessor of A who is a grant officer of B is no grant officer in A); a programme-wide
manager sees everything. Lists filter in the query."""

from __future__ import annotations

import json
import re
import secrets
from html import escape
from typing import Annotated, Literal
from urllib.parse import parse_qs

from cx_shared.auth import Principal, principal, require_role, require_role_in
from cx_shared.errors import Forbidden, Invalid, NotFound
from cx_shared.events import all_event_classes
from cx_shared.http import IdFilter, IdPath
from cx_shared.store import public
from cx_shared.vocabulary import Role
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, EmailStr, Field, HttpUrl, StringConstraints

from notifications import targets
from notifications.domain import language
from notifications.storage import OWNER_LEFT, Storage

router = APIRouter()
Who = Annotated[Principal, Depends(principal)]
EmailStatus = Literal["pending", "sending", "sent", "failed", "suppressed", "held"]  # storage's PENDING...HELD
STAFF_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER, Role.ASSESSOR)
SUBSCRIBER_ROLES = (Role.PROGRAMME_MANAGER, Role.GRANT_OFFICER)


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def scope_of(who: Principal, *roles: Role) -> list[str] | None:
    """The partnerships in which the caller holds one of ``roles`` (by default any staff role);
    None for a programme-wide manager."""
    if who.programme_wide:
        return None
    return who.partnerships_with(*(roles or STAFF_ROLES))


def in_scope(who: Principal, partnership_id: str | None, *roles: Role) -> bool:
    scope = scope_of(who, *roles)
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

PartnershipId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StaffMember(BaseModel):
    partnership_id: PartnershipId
    role: Literal["assessor", "grant_officer"]
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr = Field(max_length=254)
    language: str = Field(default="en", min_length=2, max_length=35)


@router.post("/staff", status_code=201, tags=["email"])
async def add_staff(body: StaffMember, request: Request, who: Who) -> dict:
    """Register an assessor or grant officer of a partnership as a recipient (its manager)."""
    require_role_in(who, body.partnership_id, Role.PROGRAMME_MANAGER)
    member = {**body.model_dump(), "language": language(body.language)}
    return named(await storage_of(request).add_staff(member), "staff_id")


@router.get("/staff", tags=["email"])
async def list_staff(partnership_id: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")],
                     request: Request, who: Who) -> list[dict]:
    require_role_in(who, partnership_id, *STAFF_ROLES)
    return [named(d, "staff_id") for d in await storage_of(request).list_staff(partnership_id)]


# ---- unsubscribe ---------------------------------------------------------------------------------

TOKEN_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
Token = Annotated[str, Path(min_length=16, max_length=64, pattern=TOKEN_PATTERN)]
TOKEN_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "object", "required": ["token"], "additionalProperties": False, "properties": {
        "token": {"type": "string", "minLength": 16, "maxLength": 64, "pattern": TOKEN_PATTERN}}}}
    for media in ("application/x-www-form-urlencoded", "application/json")}}}


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, tags=["email"])
async def unsubscribe_page(token: Token, request: Request) -> str:
    """The link in optional emails: a page with a button. A GET changes nothing, because mail
    scanners follow links; the button POSTs the token in the body (the path, which holds it here,
    is logged and traced as ``/unsubscribe/{token}``)."""
    await _address(request, token)
    return _form("../unsubscribe", token, "Stop optional ClusterXchange messages? Decisions and payments are "
                 "always sent.", "Unsubscribe")


def _form(action: str, token: str, text: str, button: str) -> str:
    return (f'<form method="post" action="{escape(action)}"><input type="hidden" name="token" '
            f'value="{escape(token)}"><p>{escape(text)}</p><button type="submit">{escape(button)}</button></form>')


@router.post("/unsubscribe", response_class=HTMLResponse, tags=["email"], openapi_extra=TOKEN_BODY)
async def unsubscribe(request: Request) -> str:
    """Stop optional messages to the token's address (the token in the body: a form, or JSON);
    decisions and money still go."""
    return await _opted_out(request, await token_in(request))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, tags=["email"])
async def unsubscribe_one_click(token: Token, request: Request) -> str:
    """Mail clients' one-click unsubscribe (RFC 8058 POSTs to the List-Unsubscribe URL itself)."""
    return await _opted_out(request, token)


async def _opted_out(request: Request, token: str) -> str:
    await storage_of(request).opt_out(await _address(request, token))
    return ("<p>You will no longer receive optional messages. Decisions and payments are always sent.</p>"
            + _form("resubscribe", token, "Changed your mind?", "Receive them again"))


async def _address(request: Request, token: str) -> str:
    """The token is the proof (no login is needed to unsubscribe): an opaque random id we stored,
    so that no address travels in the URL; the token itself is kept out of logs and traces."""
    address = await storage_of(request).address_of_unsubscribe_token(token)
    if address is None:
        raise NotFound("this unsubscribe link is not valid")
    return address


async def token_in(request: Request) -> str:
    """The ``token`` of a form (application/x-www-form-urlencoded) or JSON body, or 422."""
    raw = await request.body()
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
            token = body.get("token") if isinstance(body, dict) else None
        else:
            token = (parse_qs(raw.decode(), max_num_fields=5).get("token") or [None])[0]
    except (ValueError, UnicodeDecodeError):
        token = None
    if not isinstance(token, str) or not re.fullmatch(TOKEN_PATTERN, token):
        raise Invalid("the body must hold the link's token (16 to 64 letters, digits, - or _)",
                      field="token", rule="pattern")
    return token


@router.post("/resubscribe", tags=["email"], openapi_extra=TOKEN_BODY)
async def resubscribe(request: Request) -> dict:
    """Optional messages again to the token's address (the token in the body); the answer names
    no address."""
    await storage_of(request).opt_in(await _address(request, await token_in(request)))
    return {"optional_messages": True}


# ---- confirming a contact address -------------------------------------------------------------

@router.get("/confirmations/{confirmation_token}", response_class=HTMLResponse, tags=["email"])
async def confirmation_page(confirmation_token: Token, request: Request) -> str:
    """The link in the first email to an organisation's contact address: a page whose button POSTs
    the token in the body (a mail scanner following the link confirms nothing; the path is logged
    and traced as ``/confirmations/{token}``)."""
    await _confirmed_address(request, confirmation_token)
    return _form("../confirmations", confirmation_token, "Confirm that this e-mail address is yours, so that "
                 "ClusterXchange may write to it about your organisation's exchanges.", "Confirm")


@router.post("/confirmations", response_class=HTMLResponse, tags=["email"], openapi_extra=TOKEN_BODY)
async def confirm_address(request: Request) -> str:
    """Confirm the token's address (the token in the body): the emails kept for it go now."""
    await storage_of(request).confirm(await _confirmed_address(request, await token_in(request)))
    return "<p>Thank you: your address is confirmed.</p>"


async def _confirmed_address(request: Request, token: str) -> str:
    address = await storage_of(request).address_of_confirmation_token(token)
    if address is None:
        raise NotFound("this confirmation link is not valid")
    return address


# ---- webhook subscriptions ---------------------------------------------------------------------

class NewSubscription(BaseModel):
    url: HttpUrl = Field(description="https, on a public address (checked again at every delivery)")
    event_types: list[EventType] = Field(min_length=1, max_length=100, description="CloudEvents types, short names "
                                   "(e.g. grant.committed) or '*' for every event")
    partnership_ids: list[PartnershipId] = Field(default_factory=list, max_length=50,
                                       description="the partnerships whose events it receives (you must be staff "
                                                   "of each); contact data is left out")
    programme_wide: bool = Field(default=False, description="every partnership's events, with contact data "
                                 "(programme-wide managers only); exclusive with partnership_ids")
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="generated when omitted")
    owner_email: EmailStr = Field(max_length=254)
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
    if body.programme_wide and not who.programme_wide:
        raise Forbidden("only a programme-wide manager may subscribe to every partnership's events")
    foreign = [p for p in body.partnership_ids if not who.has_in(p, *SUBSCRIBER_ROLES)]
    if foreign:
        raise Forbidden(f"not a grant officer or manager of partnership {', '.join(foreign)}")


def holds_scope(who: Principal, sub: dict, *roles: Role) -> bool:
    """Does the caller hold one of ``roles`` in every partnership the subscription hears of (a
    programme-wide one: is he programme-wide)?"""
    if sub.get("programme_wide"):
        return who.programme_wide
    return all(who.has_in(p, *roles) for p in sub.get("partnership_ids") or ["?"])


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


async def _managed(subscription_id: str, request: Request, who: Principal, owner_only: bool = False) -> dict:
    """A subscription the caller may manage: his own while he is still a grant officer or manager
    of every partnership it hears of (otherwise it is suspended: its owner left), or one whose
    partnerships he manages all of (a manager may look, suspend, enable or delete it, never have
    its secret: ``owner_only``)."""
    require_role(who, *SUBSCRIBER_ROLES)
    storage = storage_of(request)
    sub = await storage.subscription(subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id}")
    if sub["owner"] == who.subject:
        if not holds_scope(who, sub, *SUBSCRIBER_ROLES):
            await storage.owner_left(subscription_id)
            raise Forbidden("you no longer hold a subscriber's role in the partnerships it hears of: "
                            "its deliveries are suspended")
        await storage.owner_seen(subscription_id)
        return await storage.subscription(subscription_id)
    if not holds_scope(who, sub, Role.PROGRAMME_MANAGER):
        raise Forbidden("this subscription belongs to someone else, in partnerships you do not manage")
    if owner_only:
        raise Forbidden("only the subscription's owner may do this (a manager may suspend or delete it)")
    return sub


@router.get("/webhooks/subscriptions", tags=["webhooks"])
async def list_subscriptions(request: Request, who: Who) -> list[dict]:
    """Your subscriptions, and those of every partnership you manage."""
    require_role(who, *SUBSCRIBER_ROLES)
    storage = storage_of(request)
    own = await storage.find_subscriptions(scope_of(who, *SUBSCRIBER_ROLES), who.subject)
    managed = await storage.find_subscriptions(scope_of(who, Role.PROGRAMME_MANAGER))
    unique = {s["_id"]: s for s in [*own, *managed]}
    return [_shown(s) for s in sorted(unique.values(), key=lambda s: s["created_at"])]


@router.get("/webhooks/subscriptions/{subscription_id}", tags=["webhooks"])
async def get_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    return _shown(await _managed(subscription_id, request, who))


@router.get("/webhooks/subscriptions/{subscription_id}/deliveries", tags=["webhooks"])
async def delivery_log(subscription_id: IdPath, request: Request, who: Who) -> list[dict]:
    """Every delivery with each attempt: time, HTTP status or a generic error, duration."""
    await _managed(subscription_id, request, who)
    return [named(d, "delivery_id") for d in await storage_of(request).find_deliveries(subscription_id)]


@router.post("/webhooks/subscriptions/{subscription_id}/enable", tags=["webhooks"])
async def enable_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    """Re-enable a disabled subscription; its suspended deliveries are retried. One suspended
    because its owner left or did not show up for too long is re-enabled by its owner only."""
    sub = await _managed(subscription_id, request, who)
    if sub.get("disabled_reason") == OWNER_LEFT and sub["owner"] != who.subject:
        raise Forbidden("suspended because its owner left: only the owner may enable it again")
    await storage_of(request).enable_subscription(subscription_id)
    return _shown(await storage_of(request).subscription(subscription_id))


@router.post("/webhooks/subscriptions/{subscription_id}/disable", tags=["webhooks"])
async def disable_subscription(subscription_id: IdPath, request: Request, who: Who) -> dict:
    """Stop deliveries; the pending ones are suspended until it is enabled again."""
    await _managed(subscription_id, request, who)
    await storage_of(request).disable_subscription(subscription_id)
    return _shown(await storage_of(request).subscription(subscription_id))


@router.post("/webhooks/subscriptions/{subscription_id}/rotation", tags=["webhooks"])
async def rotate_secret(subscription_id: IdPath, request: Request, who: Who, body: Rotation | None = None) -> dict:
    """A new signing secret, returned once; the previous one goes on signing for the grace period
    (each delivery then carries both signatures), so the subscriber can switch without a gap."""
    await _managed(subscription_id, request, who, owner_only=True)
    grace = request.app.state.settings.webhook_secret_grace_seconds
    grace = grace if body is None or body.grace_seconds is None else body.grace_seconds
    secret = secrets.token_urlsafe(32)
    await storage_of(request).rotate_secret(subscription_id, secret, grace)
    return {**_shown(await storage_of(request).subscription(subscription_id)), "secret": secret}


@router.delete("/webhooks/subscriptions/{subscription_id}", status_code=204, tags=["webhooks"])
async def unsubscribe_webhook(subscription_id: IdPath, request: Request, who: Who) -> Response:
    await storage_of(request).delete_subscription(await _managed(subscription_id, request, who))
    return Response(status_code=204)

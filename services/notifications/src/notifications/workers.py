"""The background loops (started by app.py): the mailer, the webhook dispatcher and the reminder
scheduler. Each claims one item at a time with a lease in the database, so several replicas
can run side by side and a crashed one's work is taken over when its lease expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiosmtplib
import httpx
from cx_shared.doorbell import Doorbell, Doorbells
from cx_shared.envelope import Envelope
from cx_shared.events.notifications import EmailFailed, EmailSent
from cx_shared.logging import get_logger

from notifications import mail, signature, targets
from notifications.domain import (
    ADDRESS_CONFIRMATION,
    SUBSCRIBER,
    VISITOR,
    PlannedEmail,
    Recipient,
    backoff,
    email_context,
    language,
    message_id,
    notification_id,
    owner_lapsed,
    plan_reminder,
    reminder_still_relevant,
    should_disable,
    signing_secrets,
)
from notifications.handlers import ask_confirmations, exchange_dates
from notifications.storage import (DELIVERED, DELIVERIES, FAILED, FAILING, NOTIFICATIONS, PENDING, REMINDER_CAUSE,
                                   Storage)

log = get_logger(__name__)


async def _workers(name: str, step: Callable[[str | None], Awaitable[bool]], poll_seconds: float,
                   doorbell: Doorbell | None = None, concurrency: int = 1) -> None:
    """``concurrency`` workers running ``step``. The doorbell names the items just queued in this
    process; each name goes to one worker (a queue), which takes that item by ``_id``. A worker
    with nothing named for ``poll_seconds`` looks the queue over in the database (other replicas'
    items, retries, a crashed sender's), and goes on while that finds work."""
    doorbell = doorbell or Doorbell()
    named: asyncio.Queue[str] = asyncio.Queue()

    async def listen() -> None:
        while True:
            for item in doorbell.clear():
                named.put_nowait(item)
            await doorbell.wait(3600.0)

    async def work() -> None:
        while True:
            try:
                hint = await asyncio.wait_for(named.get(), poll_seconds)
            except TimeoutError:
                hint = None
            while await _step(name, step, hint) and hint is None:
                pass

    await asyncio.gather(listen(), *(work() for _ in range(concurrency)))


async def _step(name: str, step: Callable[[str | None], Awaitable[bool]], hint: str | None) -> bool:
    """One step; a failure (the database away, a bug) is logged and the worker goes on."""
    try:
        return await step(hint)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(f"{name} step failed")
        return False


# ---- email -------------------------------------------------------------------------------------

async def mailer(storage: Storage, doorbells: Doorbells) -> None:
    """``mail_concurrency`` senders side by side, each with its SMTP connection; the claims keep
    them (and other replicas) off each other's emails."""
    s = storage.settings
    connections: list[mail.Connection] = []

    async def send(hint: str | None) -> bool:
        connection = connections.pop() if connections else mail.Connection(s)
        try:
            return await send_next_email(storage, connection, hint)
        finally:
            connections.append(connection)

    try:
        await _workers("mailer", send, s.mail_poll_seconds, doorbells.doorbell(NOTIFICATIONS), s.mail_concurrency)
    finally:
        for connection in connections:
            await connection.close()


async def send_next_email(storage: Storage, connection: mail.Connection, hint: str | None = None) -> bool:
    """Claim (leased), send, record. A crash after the SMTP server accepted the message but before
    the record re-sends it when the lease expires, with the same Message-ID (see README)."""
    doc = await storage.claim_email(hint)
    if doc is None:
        return False
    try:
        return await _send(storage, doc, connection)
    finally:
        storage.done_with(doc["_id"])


async def _send(storage: Storage, doc: dict, connection: mail.Connection) -> bool:
    s = storage.settings
    recipient = doc["recipient"]
    # an opaque token in the path: no address in the URL, and no query string for access logs to keep
    unsubscribe = None if doc["mandatory"] else \
        f"{s.public_base_url}/unsubscribe/{await storage.unsubscribe_token(recipient['email'])}"
    context = {**doc["context"], "recipient_name": recipient["name"], "role": recipient["role"]}
    if doc["template"] == ADDRESS_CONFIRMATION:  # the token is made at sending: the mail log never holds it
        token = await storage.confirmation_token(recipient["email"])
        context["confirm_url"] = f"{s.public_base_url}/confirmations/{token}"
    try:
        rendered = mail.render(doc["template"], recipient["language"], context, unsubscribe)
        message = mail.build_message(s, to=recipient["email"], rendered=rendered,
                                     message_id=message_id(doc["_id"], s.mail_from), unsubscribe_url=unsubscribe)
        await connection.send(message)
    except Exception as exc:  # SMTP refusals, network, a template bug: retry or give up visibly
        await _email_not_sent(storage, doc, exc)
        return True
    if s.mail_pause_after_send_seconds:
        await asyncio.sleep(s.mail_pause_after_send_seconds)
    if not await storage.email_finished(doc, _email_event(storage, doc, EmailSent, rendered.language)):
        log.warning("lost the claim before recording the email as sent", notification_id=doc["_id"])
    return True


async def _email_not_sent(storage: Storage, doc: dict, exc: Exception) -> None:
    s = storage.settings
    error = f"{type(exc).__name__}: {exc}"[:1000]
    permanent = isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500 \
        or not isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError))
    if permanent or doc["attempts"] >= s.mail_max_attempts:
        log.error("email failed", notification_id=doc["_id"], error=error, attempts=doc["attempts"])
        await storage.email_finished(doc, _email_event(storage, doc, EmailFailed, None, error=error))
    else:
        delay = backoff(doc["attempts"], s.mail_backoff_seconds, s.mail_backoff_max_seconds)
        log.warning("email not sent, will retry", notification_id=doc["_id"], error=error, retry_in=delay)
        await storage.email_retry(doc, error, delay)


def _email_event(storage: Storage, doc: dict, cls, lang: str | None, **extra) -> Envelope:
    cause, recipient = doc["cause"], doc["recipient"]
    event = cls(notification_id=doc["_id"], application_id=doc.get("application_id"),
                cause_event_id=cause["event_id"], cause_event_type=cause["event_type"],
                recipient_role=recipient["role"], language=lang or recipient["language"],
                template=doc["template"], **extra)
    causation = cause["event_id"] if cause.get("is_event", True) else None  # reminders have no cause event
    return Envelope.wrap(event, source=storage.settings.source, subject=cause["subject"] or doc["_id"],
                         correlation_id=cause.get("correlation_id"), causation_id=causation)


# ---- reminders -----------------------------------------------------------------------------------

async def reminder_scheduler(storage: Storage, doorbells: Doorbells) -> None:
    await _workers("reminders", lambda _: fire_next_reminder(storage), storage.settings.reminder_poll_seconds)


async def fire_next_reminder(storage: Storage) -> bool:
    """A due reminder becomes an email to the visitor (a queue item like any other)."""
    reminder = await storage.claim_reminder()
    if reminder is None:
        return False
    application = await storage.application(reminder["application_id"])
    now = storage.clock.now()
    if application is None or not reminder_still_relevant(reminder["kind"], now, exchange_dates(application)):
        await storage.reminder_done(reminder, "skipped")
        return True
    call = await storage.call(application["call_id"])
    audience = await storage.audience(application, call)
    cause_id = f"{REMINDER_CAUSE}{reminder['_id']}"
    cause = {**reminder["cause"], "event_id": cause_id, "event_type": f"reminder.{reminder['kind']}", "is_event": False}
    visitors = list(audience.of(VISITOR))
    planned = plan_reminder(cause_id, reminder["kind"], audience, await storage.opted_out([r.email for r in visitors]),
                            await ask_confirmations(visitors, None, storage, reminder["cause"]))
    context = email_context(application, call, {})
    await storage.enqueue_emails(planned, cause=cause, application_id=application["_id"], context=context,
                                 partnership_id=application["partnership_id"])
    await storage.reminder_done(reminder, "fired")
    log.info("reminder fired", reminder_id=reminder["_id"], emails=len(planned))
    return True


# ---- retention -----------------------------------------------------------------------------------

async def retention_sweeper(storage: Storage, doorbells: Doorbells) -> None:
    """Every RETENTION_SWEEP_SECONDS, delete the mail log entries, webhook deliveries and parked
    events whose time is up. Replicas may sweep at once: a delete is done once whoever does it."""
    await _workers("retention", lambda _: sweep_expired(storage), storage.settings.retention_sweep_seconds)


async def sweep_expired(storage: Storage) -> bool:
    deleted = await storage.sweep_expired()
    if any(deleted.values()):
        log.info("expired personal data deleted", **deleted)
    return False  # one delete per collection took all that was due: wait for the next sweep


# ---- webhooks ------------------------------------------------------------------------------------

async def webhook_dispatcher(storage: Storage, doorbells: Doorbells) -> None:
    # No connection kept alive: connections go to pinned addresses, and one verified for a name
    # must not carry another name's delivery that resolves to the same address.
    async with httpx.AsyncClient(timeout=storage.settings.webhook_timeout_seconds, follow_redirects=False,
                                 trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        # Several at once, so one slow endpoint does not hold every other subscriber's deliveries.
        await _workers("webhooks", lambda hint: deliver_next_webhook(storage, client, hint),
                       storage.settings.webhook_poll_seconds, doorbells.doorbell(DELIVERIES),
                       storage.settings.webhook_concurrency)


async def deliver_next_webhook(storage: Storage, client: httpx.AsyncClient, hint: str | None = None,
                               resolver: targets.Resolver = targets.system_resolver) -> bool:
    """POST the CloudEvent (structured JSON), signed, to the address the target's name resolves to
    now, if it passes the check; any 2xx is success, anything else is retried with exponential
    backoff; a delivery that exhausts its retries may disable the subscription."""
    s = storage.settings
    doc = await storage.claim_delivery(hint)
    if doc is None:
        return False
    sub = await storage.subscription(doc["subscription_id"])
    if sub is not None and sub["status"] == "active" and owner_lapsed(sub, storage.clock.now(),
                                                                       s.webhook_owner_check_seconds):
        await storage.owner_left(sub["_id"])  # its owner has not shown he still belongs for too long
        sub = await storage.subscription(sub["_id"])
    if sub is None or sub["status"] != "active":
        await storage.delivery_attempted(doc, {"at": storage.clock.now(), "error": "subscription not active"},
                                         "cancelled" if sub is None else "suspended")
        return True
    started = time.monotonic()
    status_code, error = await _post(storage, client, doc, sub, resolver)
    entry = {"at": storage.clock.now(), "attempt": doc["attempts"], "status_code": status_code, "error": error,
             "duration_ms": int((time.monotonic() - started) * 1000)}
    if error is None:
        await storage.delivery_attempted(doc, entry, DELIVERED)
        await storage.endpoint_succeeded(sub["_id"])
        return True
    failing = await storage.endpoint_failed(sub["_id"], error)
    if doc["attempts"] < s.webhook_max_attempts:
        await storage.delivery_attempted(doc, entry, PENDING,
                                         backoff(doc["attempts"], s.webhook_backoff_seconds,
                                                 s.webhook_backoff_max_seconds))
        return True
    await storage.delivery_attempted(doc, entry, FAILED)
    if failing and should_disable(failing["failing_since"], storage.clock.now(), s.webhook_disable_after_seconds):
        await _disable(storage, failing)
    return True


async def _post(storage: Storage, client: httpx.AsyncClient, doc: dict, sub: dict,
                resolver: targets.Resolver) -> tuple[int | None, str | None]:
    """(status code, error). Errors are generic on purpose: the delivery log is read over the API,
    and the low-level reason (refused, reset, no route...) would make it a port scanner."""
    s = storage.settings
    body = doc["body"].encode()
    try:
        target = await targets.checked(sub["url"], s, resolver)
    except targets.RefusedTarget:
        log.warning("webhook target refused", subscription_id=sub["_id"])
        return None, "refused target"
    except targets.Unresolved:
        return None, "connection failed"
    headers = {"Host": target.host, "Content-Type": "application/cloudevents+json; charset=utf-8",
               signature.HEADER: signature.sign(signing_secrets(sub, storage.clock.now()), int(time.time()), body),
               "X-CX-Delivery": doc["_id"], "X-CX-Attempt": str(doc["attempts"]),
               "User-Agent": "ClusterXchange-Webhooks/1"}
    extensions = {"sni_hostname": target.sni} if target.sni else {}
    try:
        response = await client.post(target.url, content=body, headers=headers, extensions=extensions)
    except httpx.TimeoutException:
        return None, "timeout"
    except httpx.HTTPError:
        return None, "connection failed"
    return response.status_code, None if 200 <= response.status_code < 300 else f"http {response.status_code}"


async def _disable(storage: Storage, sub: dict) -> None:
    """Tell the owner first (idempotent id per run of failures), then disable: a crash in between
    repeats both without a second email."""
    owner = Recipient(SUBSCRIBER, sub["owner_email"], sub.get("owner_name") or sub["owner_email"],
                      language(sub.get("owner_language")))
    cause_id = f"webhook-disabled:{sub['_id']}:{sub['failing_since'].isoformat()}"
    email = PlannedEmail(notification_id(cause_id, owner.email), owner, "webhook_disabled", True)
    cause = {"event_id": cause_id, "event_type": "webhook.subscription.disabled", "subject": sub["_id"],
             "correlation_id": None, "is_event": False}
    context = {"subscription_id": sub["_id"], "url": sub["url"], "last_error": sub.get("last_error") or "",
               "failing_since": sub["failing_since"].isoformat(timespec="seconds")}
    # about no exchange: seen in the mail log by programme-wide managers only
    await storage.enqueue_emails([email], cause=cause, application_id=None, context=context, partnership_id=None)
    if await storage.disable_subscription(sub["_id"], FAILING):
        log.warning("webhook subscription disabled", subscription_id=sub["_id"], url=sub["url"])

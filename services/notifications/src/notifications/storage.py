"""The only module that knows MongoDB: read models (recipients, calls, applications), the mail
queue, reminders, parked events, opt-outs and webhook subscriptions with their deliveries.

Every write is one single-document operation, and every queue item has a deterministic id,
so a redelivered event inserts nothing new (DuplicateKeyError = already done).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.lease import Lease, new_token
from cx_shared.events.common import Kept
from cx_shared.personal_data import ERASED_CONTACT, without_others
from cx_shared.personal_data.keys import KeyRing
from cx_shared.personal_data.erasure import TOMBSTONES, Forgotten, Place, Tombstones, forget_in, stored_contacts
from cx_shared.personal_data.export import ANSWERS, documents_in
from cx_shared.store import change
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from notifications.clock import Clock
from notifications.domain import (
    ADDRESS_CONFIRMATION,
    ASSESSOR,
    CONTACT,
    GRANT_OFFICER,
    HOST,
    VISITOR,
    Audience,
    PlannedEmail,
    Recipient,
    Reminder,
    language,
    notification_id,
    within,
)
from notifications.memory import Fresh, Recent, Routes
from notifications.settings import Settings

NOTIFICATIONS, DELIVERIES = "notifications", "webhook_deliveries"
OUTBOX_COLLECTIONS = [NOTIFICATIONS, TOMBSTONES, ANSWERS]
PARTIES = ("visitor.organisation_id", "host.organisation_id")  # an application's snapshots of its parties

# Email states: pending -> sending (claimed, leased) -> sent | pending (retry) | failed; suppressed never goes.
PENDING, SENDING, SENT, FAILED, SUPPRESSED = "pending", "sending", "sent", "failed", "suppressed"
# held: to a contact address not confirmed yet; pending once it is, deleted with the mail log's retention if never.
HELD = "held"
# Webhook delivery states: pending -> sending -> delivered | pending (retry) | failed; suspended while disabled.
DELIVERED, SUSPENDED = "delivered", "suspended"
ACTIVE, DISABLED = "active", "disabled"
# Why a subscription is disabled: its endpoint kept failing, someone disabled it, or its owner left
# the partnerships it hears of (or did not show up for WEBHOOK_OWNER_CHECK_DAYS): then only he enables it.
FAILING, BY_HAND, OWNER_LEFT = "failing", "by_hand", "owner_left"
REMINDER_CAUSE = "reminder:"  # the cause id of a reminder's emails: reminder:<reminder id>
ENROLMENT = "enrolment:"  # events parked for a party's enrolment: parked under enrolment:<organisation id>
ROUTING = {"_id": 1, "event_types": 1, "programme_wide": 1, "partnership_ids": 1, "status": 1}


class Storage:
    def __init__(self, db: AsyncDatabase, settings: Settings | None = None, clock: Clock | None = None):
        self.db = db
        self.settings = settings or Settings()
        self.clock = clock or Clock(self.settings.clock_offset_seconds)
        self.organisations, self.calls, self.applications = db.organisations, db.calls, db.applications
        self.staff, self.opt_outs, self.parked = db.staff, db.opt_outs, db.parked
        self.notifications, self.reminders = db[NOTIFICATIONS], db.reminders
        self.subscriptions, self.deliveries = db.subscriptions, db[DELIVERIES]
        # One entry per (partnership, subscription): the partnerships a subscription hears of, as
        # plain values an index serves (our FerretDB build's index misses matches inside arrays).
        self.scopes = db.subscription_scopes
        self.unsubscribe_tokens = db.unsubscribe_tokens
        # Contact addresses their owner confirmed, and the tokens of the confirmation links.
        self.confirmed, self.confirmation_tokens = db.confirmed_addresses, db.confirmation_tokens
        # What holds personal data only for a while: an entry gets ``expires_at`` when it ends.
        self.expiring = (self.notifications, self.deliveries, self.parked)
        days = timedelta(days=1)
        self.keep_mail, self.keep_deliveries, self.keep_parked = (
            days * self.settings.mail_log_retention_days, days * self.settings.webhook_delivery_retention_days,
            days * self.settings.parked_event_retention_days)
        self.tombstones = Tombstones(db)
        self.keys: KeyRing | None = None  # the subjects' keys: the service gives them at start
        self.replaying = False  # a rebuild: what depends on the time of a confirmation is as of each event's
        self.routes = Routes(self._active_subscriptions, self.settings.webhook_routes_refresh_seconds)
        # Stored once, never changed: an application's snapshot, a call's partnership, an address's token.
        self._applications, self._call_partnerships = Recent(4096), Recent(1024)
        self._tokens = Recent(4096)  # an address's unsubscribe and confirmation tokens
        self._fresh = Fresh(self.settings.read_model_memory_seconds)
        # Claims are taken one at a time in a process. MongoDB makes each claim atomic, but
        # FerretDB (local mode) lets concurrent conditional updates of one document all succeed
        # (measured: 4 concurrent find_one_and_update on a pending item -> up to 4 winners).
        self._claiming = {"email": asyncio.Lock(), "webhook": asyncio.Lock(), "reminder": asyncio.Lock()}
        # Every queue item is worked on under the one lease (cx_shared.lease): `claim` names the holder.
        self.mail_lease = Lease(self.settings.mail_lease_seconds, token="claim", until="lease_until")
        self.webhook_lease = Lease(self.settings.webhook_lease_seconds, token="claim", until="lease_until")
        # Emails queued here are claimed by this process as they are queued (its mailer is woken
        # with their ids), which spares a claiming write per email; `_sending` keeps a second
        # ring for the same id (a redelivered event) from sending it twice meanwhile.
        self.claimant = f"queued-by:{new_token()}"
        self._sending: set[str] = set()
        # The items this process queued and claimed, as written, until its mailer takes them:
        # it then needs no read of what it has just written.
        self._queued = Recent(4096)

    async def init(self) -> None:
        await self.notifications.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.notifications.create_index([("application_id", ASCENDING)])
        await self.notifications.create_index([("partnership_id", ASCENDING), ("created_at", ASCENDING)])
        await self.reminders.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
        await self.reminders.create_index([("application_id", ASCENDING)])  # cancelled per exchange
        await self.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.deliveries.create_index([("subscription_id", ASCENDING)])
        await self.staff.create_index([("partnership_id", ASCENDING), ("role", ASCENDING), ("email", ASCENDING)],
                                      unique=True)
        await self.parked.create_index([("application_id", ASCENDING)])
        await self.subscriptions.create_index([("status", ASCENDING)])
        # who hears of an event: the subscriptions of its partnership, and the programme-wide ones
        await self.scopes.create_index([("partnership_id", ASCENDING)])
        await self.subscriptions.create_index([("programme_wide", ASCENDING), ("status", ASCENDING)])
        await self.subscriptions.create_index([("owner", ASCENDING)])
        await self.unsubscribe_tokens.create_index([("email", ASCENDING)], unique=True)
        await self.confirmation_tokens.create_index([("email", ASCENDING)], unique=True)
        await self.notifications.create_index([("held_for", ASCENDING)])  # released when the address is confirmed
        for collection in self.expiring:  # the retention sweep's look-up (see sweep_expired)
            await collection.create_index([("expires_at", ASCENDING)])
        # an erasure finds a subject's snapshots and the deliveries of its events
        for party in PARTIES:
            await self.applications.create_index([(party, ASCENDING)])
        await self.deliveries.create_index([("subject", ASCENDING)])

    # ---- read models --------------------------------------------------------------------------

    async def save_organisation(self, org: dict[str, Any]) -> None:
        """Keep the newest revision only: an older update arriving late changes nothing."""
        try:
            await self.organisations.update_one({"_id": org["organisation_id"], "revision": {"$lte": org["revision"]}},
                                                {"$set": {**org, "_id": org["organisation_id"]}}, upsert=True)
        except DuplicateKeyError:
            pass  # a newer revision is stored
        self._fresh.forget(("organisation", org["organisation_id"]))

    async def save_call(self, call: dict[str, Any]) -> None:
        """The call as published or changed before it opened: an older revision arriving late changes nothing."""
        newer = {"$or": [{"revision": {"$lt": call.get("revision", 1)}}, {"revision": {"$exists": False}}]}
        with suppress(DuplicateKeyError):  # a newer revision is stored
            await self.calls.update_one({"_id": call["call_id"], **newer}, {"$set": call}, upsert=True)
        self._fresh.forget(("call", call["call_id"]))

    async def save_application(self, application: dict[str, Any]) -> None:
        await _insert(self.applications, {**application, "_id": application["application_id"]})

    async def application(self, application_id: str | None) -> dict | None:
        """The parties and dates as submitted (callers do not change the dict: it is shared)."""
        if not application_id:
            return None
        if (doc := self._applications.get(application_id)) is None:
            doc = await self.applications.find_one({"_id": application_id})
            if doc is not None:
                self._applications.put(application_id, doc)
        return doc

    async def call(self, call_id: str) -> dict | None:
        return await self._fresh.read(("call", call_id), lambda: self.calls.find_one({"_id": call_id}))

    async def partnership_of_call(self, call_id: str) -> str | None:
        if (partnership_id := self._call_partnerships.get(call_id)) is None:
            call = await self.call(call_id)
            partnership_id = call["partnership_id"] if call else None
            if partnership_id is not None:
                self._call_partnerships.put(call_id, partnership_id)
        return partnership_id

    async def audience(self, application: dict, call: dict | None) -> Audience:
        """Everyone concerned by an application (of ``call``), with the language of their latest enrolment."""
        call = call or {}
        contact_email = call.get("contact_email")
        # The call's contact has no enrolment, hence no language of its own: English, the programme's.
        contact = Recipient(CONTACT, contact_email, call.get("title", ""), "en") if contact_email else None
        partnership_id = application["partnership_id"]
        staff = await self._fresh.read(("staff", partnership_id),
                                       lambda: self.staff.find({"partnership_id": partnership_id}).to_list())
        return Audience(
            visitor=await self._participant(VISITOR, application["visitor"]),
            host=await self._participant(HOST, application["host"]),
            partnership_contact=contact,
            assessors=tuple(_staff(s) for s in staff if s["role"] == ASSESSOR),
            grant_officers=tuple(_staff(s) for s in staff if s["role"] == GRANT_OFFICER))

    async def unknown_parties(self, application: dict) -> list[str]:
        """The parties whose contact is known neither from their enrolment nor from the submission
        (a v2 submission carries none, and its enrolment may come a moment later, on another key)."""
        return [snapshot["organisation_id"] for snapshot in (application["visitor"], application["host"])
                if not snapshot.get("contact") and await self._enrolment(snapshot["organisation_id"]) is None]

    async def _enrolment(self, organisation_id: str) -> dict | None:
        return await self._fresh.read(("organisation", organisation_id),
                                      lambda: self.organisations.find_one({"_id": organisation_id}))

    async def _participant(self, role: str, snapshot: dict) -> Recipient:
        enrolled = await self._enrolment(snapshot["organisation_id"])
        # The enrolment's contact; a submission of old (v1) carried one too. Neither: nobody to mail
        # (the placeholder is never mailed).
        contact = (enrolled or {}).get("contact") or snapshot.get("contact") or ERASED_CONTACT
        return Recipient(role, contact["email"], contact["name"], language(contact.get("language")))

    async def add_staff(self, member: dict[str, Any]) -> dict:
        doc = {**member, "email": member["email"].lower(), "_id": str(uuid.uuid4())}
        key = {k: doc[k] for k in ("partnership_id", "role", "email")}
        await self.staff.update_one(key, {"$set": {"name": doc["name"], "language": doc["language"]},
                                          "$setOnInsert": {"_id": doc["_id"]}}, upsert=True)
        self._fresh.forget(("staff", doc["partnership_id"]))
        return await self.staff.find_one(key)

    async def list_staff(self, partnership_id: str) -> list[dict]:
        return [s async for s in self.staff.find({"partnership_id": partnership_id}).sort("email")]

    # ---- personal data --------------------------------------------------------------------------

    async def places(self, subject_id: str) -> tuple[list[Place], list[str]]:
        """Where the subject's data is: its read models, and the mail log, webhook deliveries and
        parked events of its exchanges (which it also returns)."""
        exchanges = [d["_id"] for p in PARTIES async for d in self.applications.find({p: subject_id}, {"_id": 1})]
        places = [(self.organisations, {"_id": subject_id}), *[(self.applications, {p: subject_id}) for p in PARTIES],
                  (self.deliveries, {"subject": subject_id})]
        for a in exchanges:
            places += [(self.notifications, {"application_id": a}), (self.deliveries, {"subject": a}),
                       (self.parked, {"application_id": a})]
        # Events waiting for its enrolment: they may hold its texts (a report parked before its enrolment).
        return [*places, (self.parked, {"application_id": ENROLMENT + subject_id})], exchanges

    async def contacts(self, subject_id: str) -> list[dict]:
        """The subject's contact persons: as enrolled now, and as its submissions of old carried them."""
        places = [(self.organisations, {"_id": subject_id}), *[(self.applications, {p: subject_id}) for p in PARTIES]]
        return [c for collection, query in places for c in await stored_contacts(collection, query, subject_id)]

    async def export(self, subject_id: str) -> list[dict]:
        """The subject's data (not every document that names it): see `exported`."""
        places, _ = await self.places(subject_id)
        emails = sorted({c["email"].lower() for c in await self.contacts(subject_id)})
        return exported(subject_id, set(emails), await documents_in(
            [*places, *[(self.opt_outs, {"_id": e}) for e in emails],
             *[(self.unsubscribe_tokens, {"email": e}) for e in emails], *self._confirmation_places(emails)]))

    def _confirmation_places(self, emails) -> list[Place]:
        """An address's confirmation: the email asking it, its link's token, the record it was confirmed."""
        return [place for e in emails for place in (
            (self.notifications, {"_id": notification_id(ADDRESS_CONFIRMATION, e)}),
            (self.confirmation_tokens, {"email": e}), (self.confirmed, {"_id": e}))]

    async def forget(self, subject_id: str) -> Forgotten:
        """The subject's contact person out of the read models, the mail log, webhook deliveries and
        parked events of its exchanges, and its opt-out and unsubscribe link."""
        places, exchanges = await self.places(subject_id)
        contacts = await self.contacts(subject_id)
        emails = {c["email"].lower() for c in contacts}
        # the confirmation asked of each address (every third place: the email, of no exchange, by its id)
        changed = await forget_in([*places, *self._confirmation_places(emails)[::3]], subject_id, contacts)
        for email in emails:
            await self.opt_outs.delete_one({"_id": email})
            await self.unsubscribe_tokens.delete_one({"email": email})
            await self.confirmation_tokens.delete_one({"email": email})
            await self.confirmed.delete_one({"_id": email})
            self._fresh.forget(("opt-out", email))
            self._fresh.forget(("confirmed", email))
        for a in exchanges:
            self._applications.pop(a)
        self._fresh.forget(("organisation", subject_id))
        return Forgotten(removed=[f"the contact person, and the texts the organisation wrote (reports, feedback), in "
                                  f"{changed} documents of the read models, mail log, webhook deliveries and parked "
                                  f"events ({len(exchanges)} exchanges)",
                                  "opt-outs, unsubscribe and confirmation links of the contact's addresses"],
                         kept=[Kept(what="the mail log's entries and deliveries, without the contact person",
                                    why="what was sent when, for the partnership's record")])

    # ---- events that came before their application ---------------------------------------------

    async def park(self, envelope: Envelope, application_id: str) -> None:
        """Keep the event until `application_id` (an application, or a party's enrolment) is known;
        an event parked already waits for this instead (it came back from a replay for something else)."""
        now = self.clock.now()
        if not await _insert(self.parked, {"_id": envelope.id, "application_id": application_id,
                                           "envelope": envelope.to_outbox(), "parked_at": now,
                                           "expires_at": now + self.keep_parked}):
            await self.parked.update_one({"_id": envelope.id}, {"$set": {"application_id": application_id}})

    async def parked_for(self, application_id: str) -> list[Envelope]:
        docs = [d async for d in self.parked.find({"application_id": application_id}).sort("parked_at")]
        return [Envelope.from_outbox(d["envelope"]) for d in docs]

    async def unpark(self, event_id: str, application_id: str) -> None:
        """Done waiting for `application_id` (parked again for something else, it stays)."""
        await self.parked.delete_one({"_id": event_id, "application_id": application_id})

    # ---- opt-outs -----------------------------------------------------------------------------

    async def opt_out(self, email: str) -> None:
        await self.opt_outs.update_one({"_id": email.lower()}, {"$setOnInsert": {"at": self.clock.now()}},
                                       upsert=True)
        self._fresh.forget(("opt-out", email.lower()))

    async def opt_in(self, email: str) -> None:
        await self.opt_outs.delete_one({"_id": email.lower()})
        self._fresh.forget(("opt-out", email.lower()))

    async def opted_out(self, emails: list[str]) -> frozenset[str]:
        # one look-up by _id each (a handful of recipients): FerretDB serves $in by a scan
        found = [await self._fresh.read(("opt-out", e), lambda e=e: self.opt_outs.find_one({"_id": e}, {"_id": 1}))
                 for e in {e.lower() for e in emails}]
        return frozenset(d["_id"] for d in found if d)

    # ---- the mail queue -----------------------------------------------------------------------

    async def enqueue_emails(self, planned: list[PlannedEmail], *, cause: dict[str, Any],
                             application_id: str | None, context: dict[str, Any], partnership_id: str | None) -> int:
        """One queue item per planned email; items already there (a redelivery) are left alone."""
        now, added = self.clock.now(), 0
        for email in planned:
            if email.suppressed or email.held:
                claim = {"status": SUPPRESSED if email.suppressed else HELD, "attempts": 0,
                         **self.mail_lease.released(), "expires_at": now + self.keep_mail}
                if not email.suppressed:
                    claim["held_for"] = email.recipient.email.strip().lower()
            else:
                claim = {"status": SENDING, "attempts": 1, **self.mail_lease.fields(now, self.claimant)}
            doc = {"_id": email.notification_id, **claim, "template": email.template, "mandatory": email.mandatory,
                   "recipient": {"role": email.recipient.role, "email": email.recipient.email,
                                 "name": email.recipient.name, "language": email.recipient.language},
                   "application_id": application_id, "partnership_id": partnership_id, "cause": cause,
                   "context": context, "next_attempt_at": now,
                   "created_at": now, "last_error": None, "outbox": [], "processed": []}
            if await _insert(self.notifications, doc):
                added += 1
                if doc["status"] == SENDING:
                    self._queued.put(doc["_id"], doc)
        return added

    async def claim_email(self, hint: str | None = None) -> dict | None:
        """The email ``hint``, which this process queued and claimed (a read, while most of its
        lease is left), or else the next due one, claimed for ``mail_lease_seconds``; an expired
        lease (a crash) is re-taken. ``done_with`` when it is sent, failed or retried."""
        if hint is not None:
            if hint in self._sending:
                return None
            mine = {"_id": hint, **self.mail_lease.held_by(self.claimant), "status": SENDING}
            doc = self._queued.pop(hint) or await self.notifications.find_one(mine)
            now, half = self.clock.now(), timedelta(seconds=self.mail_lease.seconds / 2)
            if doc is not None and self.mail_lease.lapses(doc) <= now + half:  # it waited: renew the lease
                doc = await self.notifications.find_one_and_update(
                    mine, {"$set": self.mail_lease.fields(now, new_token())}, return_document=ReturnDocument.AFTER)
        else:
            async with self._claiming["email"]:
                doc = await self._claim(self.notifications, self.mail_lease, None)
        if doc is None or doc["_id"] in self._sending:
            return None
        self._sending.add(doc["_id"])
        return doc

    def done_with(self, notification_id: str) -> None:
        self._sending.discard(notification_id)

    async def _claim(self, queue, lease: Lease, hint: str | None) -> dict | None:
        """By ``_id`` when the doorbell named the item; else the next due item: pending first,
        then one whose sender died holding it, one status at a time so that the
        (status, next_attempt_at) index narrows the look-up to that status."""
        now = self.clock.now()
        due = {"next_attempt_at": {"$lte": now}, **lease.free(now)}
        claim = {"$set": {"status": SENDING, **lease.fields(now, new_token())}, "$inc": {"attempts": 1}}
        if hint is not None:
            return await queue.find_one_and_update({"_id": hint, "status": PENDING, **due}, claim,
                                                   return_document=ReturnDocument.AFTER)
        for status in (PENDING, SENDING):
            doc = await queue.find_one_and_update({"status": status, **due}, claim,
                                                  sort=[("next_attempt_at", ASCENDING)],
                                                  return_document=ReturnDocument.AFTER)
            if doc is not None:
                return doc
        return None

    async def email_recorded(self, event: Envelope) -> None:
        """A rebuild: the email ends as its event says (sent or failed), so it is never sent again;
        a reminder's email says its reminder fired (the email itself is not queued again)."""
        data = event.data
        await self.notifications.update_one({"_id": data["notification_id"]},
                                            {"$set": finished(event, self.keep_mail), "$unset": {"held_for": ""}})
        if (cause := data["cause_event_id"]).startswith(REMINDER_CAUSE):
            await self.reminders.update_one({"_id": cause.removeprefix(REMINDER_CAUSE)},
                                            {"$set": {"status": "fired", "fired_at": event.time}})

    async def email_retry(self, doc: dict, error: str, delay_seconds: float) -> None:
        await self.notifications.update_one(
            {"_id": doc["_id"], **self.mail_lease.held_by(doc["claim"])},
            {"$set": {"status": PENDING, "last_error": error, **self.mail_lease.released(),
                      "next_attempt_at": self.clock.now() + timedelta(seconds=delay_seconds)}})

    async def email_finished(self, doc: dict, event: Envelope) -> bool:
        """Sent or failed, as its event (EmailSent, EmailFailed) says, and the event, in one update;
        only the holder of the claim may do it."""
        result = await self.notifications.update_one({"_id": doc["_id"], **self.mail_lease.held_by(doc["claim"])},
                                                     change({"$set": finished(event, self.keep_mail)}, events=[event]))
        return result.matched_count == 1

    async def find_notifications(self, scope: list[str] | None, application_id: str | None = None,
                                 status: str | None = None, limit: int = 200) -> list[dict]:
        query = {k: v for k, v in (("application_id", application_id), ("status", status)) if v}
        return await _scoped(self.notifications, query, scope, "created_at", limit, {"context": 0})

    async def notification(self, notification_id: str) -> dict | None:
        return await self.notifications.find_one({"_id": notification_id})

    # ---- reminders ----------------------------------------------------------------------------

    async def schedule(self, reminders: list[Reminder], cause: dict[str, Any], partnership_id: str | None) -> None:
        """Reminders survive restarts because they live here; a cancelled one is never revived."""
        for r in reminders:
            await _insert(self.reminders, {"_id": r.reminder_id, "kind": r.kind, "application_id": r.application_id,
                                           "partnership_id": partnership_id,
                                           "due_at": r.due_at, "status": "scheduled", "cause": cause,
                                           "scheduled_at": self.clock.now()})

    async def reschedule(self, reminders: list[Reminder], cause: dict[str, Any], partnership_id: str | None) -> None:
        """Move a scheduled reminder to a new due time (created if there was none); one that
        already fired or was cancelled stays as it is."""
        for r in reminders:
            moved = await self.reminders.update_one({"_id": r.reminder_id, "status": "scheduled"},
                                                    {"$set": {"due_at": r.due_at, "rescheduled_by": cause}})
            if moved.matched_count == 0:
                await self.schedule([r], cause, partnership_id)

    async def cancel_reminders(self, application_id: str, kinds: tuple[str, ...], at: datetime) -> None:
        """Cancelled at the time of the event that cancels them (a rebuild stamps the same)."""
        await self.reminders.update_many(
            {"application_id": application_id, "kind": {"$in": list(kinds)}, "status": "scheduled"},
            {"$set": {"status": "cancelled", "cancelled_at": at}})

    async def claim_reminder(self) -> dict | None:
        """Take a due reminder under a lease: if we crash it comes back when the lease lapses."""
        async with self._claiming["reminder"]:
            now = self.clock.now()
            return await self.reminders.find_one_and_update(
                {"status": "scheduled", "due_at": {"$lte": now}, **self.mail_lease.free(now)},
                {"$set": self.mail_lease.fields(now, new_token())},
                sort=[("due_at", ASCENDING)], return_document=ReturnDocument.AFTER)

    async def reminder_done(self, reminder: dict, status: str) -> None:
        """Only by the holder of the claim: one whose lease lapsed and was taken over does nothing."""
        await self.reminders.update_one({"_id": reminder["_id"], **self.mail_lease.held_by(reminder["claim"])},
                                        {"$set": {"status": status, "fired_at": self.clock.now(),
                                                  **self.mail_lease.released()}})

    async def find_reminders(self, scope: list[str] | None, application_id: str) -> list[dict]:
        return await _scoped(self.reminders, {"application_id": application_id}, scope, "due_at")

    # ---- webhook subscriptions ------------------------------------------------------------------

    async def add_subscription(self, sub: dict[str, Any]) -> dict:
        """The scope's entries first: an entry whose subscription never came is ignored, while a
        subscription without its entries would silently hear nothing."""
        doc = {**sub, "_id": str(uuid.uuid4()), "status": ACTIVE, "created_at": self.clock.now(),
               "owner_seen_at": self.clock.now(), "failing_since": None, "last_error": None, "disabled_at": None}
        for partnership_id in doc["partnership_ids"]:
            await _insert(self.scopes, {"_id": _scope_id(partnership_id, doc["_id"]),
                                        "partnership_id": partnership_id, "subscription_id": doc["_id"]})
        await self.subscriptions.insert_one(doc)
        self.routes.changed()
        return doc

    async def _subscriptions_of(self, partnership_id: str) -> list[dict]:
        entries = await self.scopes.find({"partnership_id": partnership_id}).to_list()
        found = [await self.subscription(e["subscription_id"]) for e in entries]
        return [d for d in found if d is not None]

    async def subscription(self, subscription_id: str) -> dict | None:
        return await self.subscriptions.find_one({"_id": subscription_id})

    async def find_subscriptions(self, scope: list[str] | None, owner: str | None = None) -> list[dict]:
        """Those of ``owner`` (anyone's when None) within ``scope``: found by owner or through the
        scope entries of each partnership (indexed), then kept only when every partnership they
        hear of is in ``scope``."""
        if owner is not None:
            found = await self.subscriptions.find({"owner": owner}).to_list()
        elif scope is None:
            found = await self.subscriptions.find({}).to_list()
        else:
            found = [d for p in dict.fromkeys(scope) for d in await self._subscriptions_of(p)]
        unique = {d["_id"]: d for d in found if within(scope, d)}
        return sorted(unique.values(), key=lambda d: d["created_at"])

    async def subscriptions_hearing_of(self, partnership_id: str | None) -> list[dict]:
        """The active subscriptions an event of ``partnership_id`` goes to: the programme-wide ones
        and, when the event belongs to a partnership, that partnership's (from memory: Routes)."""
        return await self.routes.hearing_of(partnership_id)

    async def _active_subscriptions(self) -> list[dict]:
        return await self.subscriptions.find({"status": ACTIVE}, ROUTING).to_list()

    async def rotate_secret(self, subscription_id: str, secret: str, grace_seconds: float) -> None:
        """The new secret signs from now on; the current one goes on signing for ``grace_seconds``."""
        sub = await self.subscription(subscription_id)
        until = self.clock.now() + timedelta(seconds=grace_seconds)
        await self.subscriptions.update_one({"_id": subscription_id}, {"$set": {
            "secret": secret, "previous_secret": sub["secret"], "previous_secret_until": until,
            "rotated_at": self.clock.now()}})

    # ---- unsubscribe links ------------------------------------------------------------------------

    async def unsubscribe_token(self, email: str) -> str:
        """The address's opaque token (random, made once, good for opting out and in only)."""
        return await self._token(self.unsubscribe_tokens, email)

    async def confirmation_token(self, email: str) -> str:
        """The address's confirmation link's token (random, made once, good for confirming only)."""
        return await self._token(self.confirmation_tokens, email)

    async def _token(self, collection, email: str) -> str:
        address = email.strip().lower()
        if (token := self._tokens.get((collection.name, address))) is None:
            token = await self._stored_token(collection, address)
            self._tokens.put((collection.name, address), token)
        return token

    async def _stored_token(self, collection, address: str) -> str:
        if found := await collection.find_one({"email": address}):
            return found["_id"]
        token = secrets.token_urlsafe(24)
        if await _insert(collection, {"_id": token, "email": address, "created_at": self.clock.now()}):
            return token
        return (await collection.find_one({"email": address}))["_id"]  # another sender made it first

    async def address_of_unsubscribe_token(self, token: str) -> str | None:
        found = await self.unsubscribe_tokens.find_one({"_id": token})
        return found["email"] if found else None

    async def address_of_confirmation_token(self, token: str) -> str | None:
        found = await self.confirmation_tokens.find_one({"_id": token})
        return found["email"] if found else None

    # ---- confirmed contact addresses ------------------------------------------------------------

    async def unconfirmed(self, addresses: list[str], at: datetime | None = None) -> frozenset[str]:
        """Those of ``addresses`` (lower case) that their owner has not confirmed (by ``at``: a
        rebuild asks as of each event's time, so that it plans what was planned live)."""
        found = [await self._fresh.read(("confirmed", a), lambda a=a: self.confirmed.find_one({"_id": a}))
                 for a in set(addresses)]
        return frozenset(addresses) - {d["_id"] for d in found if d and (at is None or d["confirmed_at"] <= at)}

    async def confirm(self, address: str) -> int:
        """The owner followed the link: the address is confirmed (for good: copied by a rebuild, as
        it is carried by no event), and the emails held for it go. Returns how many."""
        now = self.clock.now()
        with suppress(DuplicateKeyError):
            await self.confirmed.update_one({"_id": address, "confirmed_at": {"$exists": False}},
                                            {"$set": {"confirmed_at": now}}, upsert=True)
        self._fresh.forget(("confirmed", address))
        released = await self.notifications.update_many(
            {"held_for": address, "status": HELD},
            {"$set": {"status": PENDING, "next_attempt_at": now}, "$unset": {"held_for": "", "expires_at": ""}})
        return released.modified_count

    async def delete_subscription(self, sub: dict) -> None:
        subscription_id = sub["_id"]
        await self.subscriptions.delete_one({"_id": subscription_id})
        self.routes.changed()
        for partnership_id in sub.get("partnership_ids") or []:
            await self.scopes.delete_one({"_id": _scope_id(partnership_id, subscription_id)})
        await self.deliveries.update_many({"subscription_id": subscription_id, "status": {"$in": [PENDING, SUSPENDED]}},
                                          {"$set": {"status": "cancelled",
                                                    "expires_at": self.clock.now() + self.keep_deliveries}})

    async def enqueue_delivery(self, delivery: dict[str, Any]) -> None:
        now = self.clock.now()
        await _insert(self.deliveries, {**delivery, "status": PENDING, "attempts": 0, "next_attempt_at": now,
                                        **self.webhook_lease.released(), "created_at": now, "log": []})

    async def claim_delivery(self, hint: str | None = None) -> dict | None:
        async with self._claiming["webhook"]:
            return await self._claim(self.deliveries, self.webhook_lease, hint)

    async def delivery_attempted(self, doc: dict, entry: dict, status: str, delay_seconds: float = 0.0) -> None:
        """Log the attempt and move the delivery on, in one update."""
        fields: dict[str, Any] = {"status": status, **self.webhook_lease.released()}
        if status == PENDING:
            fields["next_attempt_at"] = self.clock.now() + timedelta(seconds=delay_seconds)
        elif status in (DELIVERED, FAILED):
            fields["expires_at"] = self.clock.now() + self.keep_deliveries
        await self.deliveries.update_one({"_id": doc["_id"], **self.webhook_lease.held_by(doc["claim"])},
                                         {"$set": fields, "$push": {"log": entry}})

    async def endpoint_succeeded(self, subscription_id: str) -> None:
        await self.subscriptions.update_one({"_id": subscription_id},
                                            {"$set": {"failing_since": None, "last_success_at": self.clock.now()}})

    async def endpoint_failed(self, subscription_id: str, error: str) -> dict | None:
        """Record the failure; the first of a run of failures sets ``failing_since``."""
        now = self.clock.now()
        await self.subscriptions.update_one({"_id": subscription_id, "failing_since": None},
                                            {"$set": {"failing_since": now}})
        return await self.subscriptions.find_one_and_update({"_id": subscription_id},
                                                            {"$set": {"last_error": error}},
                                                            return_document=ReturnDocument.AFTER)

    async def owner_seen(self, subscription_id: str) -> None:
        """Its owner called with a token that still holds his role in its partnerships."""
        await self.subscriptions.update_one({"_id": subscription_id}, {"$set": {"owner_seen_at": self.clock.now()}})

    async def owner_left(self, subscription_id: str) -> bool:
        return await self.disable_subscription(subscription_id, OWNER_LEFT)

    async def disable_subscription(self, subscription_id: str, reason: str = BY_HAND) -> bool:
        result = await self.subscriptions.update_one({"_id": subscription_id, "status": ACTIVE},
                                                     {"$set": {"status": DISABLED, "disabled_at": self.clock.now(),
                                                               "disabled_reason": reason}})
        self.routes.changed()
        await self.deliveries.update_many({"subscription_id": subscription_id, "status": PENDING},
                                          {"$set": {"status": SUSPENDED}})
        return result.modified_count == 1

    async def enable_subscription(self, subscription_id: str) -> None:
        await self.subscriptions.update_one({"_id": subscription_id},
                                            {"$set": {"status": ACTIVE, "failing_since": None, "disabled_at": None,
                                                      "disabled_reason": None}})
        self.routes.changed()
        await self.deliveries.update_many({"subscription_id": subscription_id, "status": SUSPENDED},
                                          {"$set": {"status": PENDING, "next_attempt_at": self.clock.now()}})

    # ---- retention ------------------------------------------------------------------------------

    async def sweep_expired(self) -> dict[str, int]:
        """Delete what has been kept long enough: one ranged delete per collection, served by its
        ``expires_at`` index, so a sweep costs what it deletes, not what is stored."""
        now = self.clock.now()
        return {c.name: (await c.delete_many({"expires_at": {"$lte": now}})).deleted_count for c in self.expiring}

    async def find_deliveries(self, subscription_id: str, limit: int = 200) -> list[dict]:
        return [d async for d in self.deliveries.find({"subscription_id": subscription_id}, {"body": 0})
                .sort("created_at").limit(limit)]


# What an export says of a webhook delivery or a parked event: to whom the subject's data went
# (a recipient, GDPR art. 15) and when, not the event, which holds other people's data too.
DISCLOSED = ("_id", "subscription_id", "event_type", "status", "created_at", "expires_at")
PARKED_SHOWN = ("_id", "parked_at", "expires_at")


def exported(subject_id: str, emails: set[str], found: list[dict]) -> list[dict]:
    """The subject's part of an export, from the documents that name it: only the e-mails sent to
    the subject's own addresses, each webhook delivery as a disclosure (subscription, event type,
    when) and each parked event as a date, and never another organisation's contact person."""
    shown = []
    for item in found:
        doc = item["document"]
        if item["collection"] == NOTIFICATIONS and str(doc.get("recipient", {}).get("email", "")).lower() not in emails:
            continue
        if item["collection"] == DELIVERIES:
            doc = {k: doc[k] for k in DISCLOSED if k in doc}
        elif item["collection"] == "parked":
            doc = {k: doc[k] for k in PARKED_SHOWN if k in doc}
        shown.append({"collection": item["collection"], "document": without_others(doc, subject_id)})
    return shown


async def _scoped(collection, query: dict, scope: list[str] | None, sort: str, limit: int = 200,
                  projection: dict | None = None) -> list[dict]:
    """``query`` within the partnerships ``scope`` (None: programme-wide), oldest ``sort`` first.
    One equality look-up per partnership (a member of few), so an index leading with
    ``partnership_id`` serves each; the results are merged here."""
    queries = [query] if scope is None else [{**query, "partnership_id": p} for p in dict.fromkeys(scope)]
    found = [d for q in queries for d in await collection.find(q, projection).sort(sort).limit(limit).to_list()]
    return sorted(found, key=lambda d: d[sort])[:limit]


def finished(event: Envelope, keep: timedelta) -> dict[str, Any]:
    """What an email's EmailSent or EmailFailed event says of it: the same fields live and in a
    rebuild; the entry is kept ``keep`` from then."""
    if "error" in event.data:
        return {"status": FAILED, "failed_at": event.time, "last_error": event.data["error"],
                "expires_at": event.time + keep}
    return {"status": SENT, "sent_at": event.time, "expires_at": event.time + keep}


def _scope_id(partnership_id: str, subscription_id: str) -> str:
    return f"{partnership_id}|{subscription_id}"


async def _insert(collection, doc: dict) -> int:
    """Insert unless a document with this id exists: 1 if inserted, 0 if it was already done."""
    try:
        await collection.insert_one(doc)
        return 1
    except DuplicateKeyError:
        return 0


def _staff(doc: dict) -> Recipient:
    return Recipient(doc["role"], doc["email"], doc["name"], language(doc.get("language")))

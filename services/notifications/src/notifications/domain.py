"""Who hears what, in which language, when: the notification rules, pure Python, no I/O.

Everything here is decided from facts the handlers pass in (read models of enrolment,
calls and applications), so the rules are tested in microseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from cx_shared.personal_data import ERASED_EMAIL, WRITTEN, written_by
from cx_shared.vocabulary import OUTCOME_KINDS

LANGUAGES = ("en", "fr", "de")  # languages with templates; any other falls back to English
FALLBACK_LANGUAGE = "en"
NARROW_SPACE = "\u202f"  # French groups thousands with a narrow no-break space

# Recipient roles.
VISITOR, HOST, CONTACT = "visitor", "host", "partnership_contact"
ASSESSOR, GRANT_OFFICER, SUBSCRIBER = "assessor", "grant_officer", "subscriber"

# Template -> mandatory? Decisions and money always go; the rest can be unsubscribed from.
TEMPLATES: dict[str, bool] = {
    "application_received": False,
    "host_named": False,
    "new_application": False,
    "application_approved": True,
    "host_confirmation_requested": True,
    "application_rejected": True,
    "application_waitlisted": True,
    "host_accepted": True,
    "host_declined": True,
    "grant_committed": True,
    "grant_refused": True,
    "commitment_released": True,
    "application_withdrawn": False,
    "application_cancelled": True,
    "agreement_issued": True,
    "payment_settled": True,
    "commitment_reduced": True,
    "reminder_agreement_not_accepted": True,
    "reminder_exchange_starting_soon": False,
    "reminder_report_due": True,
    "webhook_disabled": True,
    "exchange_no_show": True,
    "report_changes_requested": True,
    "report_overdue": True,
    "payment_ordered": True,
    "address_confirmation": True,
}
ADDRESS_CONFIRMATION = "address_confirmation"
# Addresses anyone may give (an organisation's contact, at enrolment or on a change) hear nothing
# but the confirmation until their owner confirmed them; staff and the partnership's contact are
# entered by the partnership's managers.
CONFIRMED_ROLES = (VISITOR, HOST)

# Event name -> who hears of it, with which template. The whole routing in one table.
ROUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "application.submitted": ((VISITOR, "application_received"), (HOST, "host_named"), (CONTACT, "new_application")),
    "application.queued": ((ASSESSOR, "new_application"),),  # new work in the assessors' queue (panel calls)
    "application.approved": ((VISITOR, "application_approved"), (HOST, "host_confirmation_requested")),
    "application.rejected": ((VISITOR, "application_rejected"),),
    "application.waitlisted": ((VISITOR, "application_waitlisted"),),
    "host.accepted": ((VISITOR, "host_accepted"),),
    "host.declined": ((VISITOR, "host_declined"), (CONTACT, "host_declined")),
    "grant.committed": ((VISITOR, "grant_committed"), (GRANT_OFFICER, "grant_committed")),
    "grant.refused": ((VISITOR, "grant_refused"), (GRANT_OFFICER, "grant_refused"), (CONTACT, "grant_refused")),
    "commitment.released": ((VISITOR, "commitment_released"), (GRANT_OFFICER, "commitment_released")),
    "application.withdrawn": ((HOST, "application_withdrawn"), (CONTACT, "application_withdrawn")),
    "application.cancelled": ((VISITOR, "application_cancelled"), (HOST, "application_cancelled"),
                              (CONTACT, "application_cancelled")),
    "grant_agreement.issued": ((VISITOR, "agreement_issued"),),
    "commitment.reduced": ((VISITOR, "commitment_reduced"), (GRANT_OFFICER, "commitment_reduced")),
    "payment.settled": ((VISITOR, "payment_settled"),),
    "exchange.no_show": ((VISITOR, "exchange_no_show"), (HOST, "exchange_no_show"), (CONTACT, "exchange_no_show"),
                         (GRANT_OFFICER, "exchange_no_show")),
    "report.changes_requested": ((VISITOR, "report_changes_requested"),),
    "report.overdue": ((VISITOR, "report_overdue"), (CONTACT, "report_overdue"), (GRANT_OFFICER, "report_overdue")),
    # the balance after the report's acceptance (the pre-financing order is told by agreement emails)
    "payment.ordered:balance": ((VISITOR, "payment_ordered"),),
}


def routing_key(event_name: str, data: dict) -> str:
    """The ROUTES key of an event: payment orders are routed by their kind."""
    if event_name == "payment.ordered":
        return f"{event_name}:{data.get('kind', '')}"
    return event_name


@dataclass(frozen=True)
class Recipient:
    role: str
    email: str
    name: str
    language: str = FALLBACK_LANGUAGE


@dataclass(frozen=True)
class Audience:
    """Everyone who may hear of one application's events."""

    visitor: Recipient | None = None
    host: Recipient | None = None
    partnership_contact: Recipient | None = None
    assessors: tuple[Recipient, ...] = ()
    grant_officers: tuple[Recipient, ...] = ()

    def everyone(self) -> list[Recipient]:
        return [r for role in (VISITOR, HOST, CONTACT, ASSESSOR, GRANT_OFFICER) for r in self.of(role)]

    def of(self, role: str) -> tuple[Recipient, ...]:
        if role == VISITOR:
            return (self.visitor,) if self.visitor else ()
        if role == HOST:
            return (self.host,) if self.host else ()
        if role == CONTACT:
            return (self.partnership_contact,) if self.partnership_contact else ()
        if role == ASSESSOR:
            return self.assessors
        if role == GRANT_OFFICER:
            return self.grant_officers
        return ()


@dataclass(frozen=True)
class PlannedEmail:
    notification_id: str
    recipient: Recipient
    template: str
    mandatory: bool
    suppressed: bool = False  # optional and the address unsubscribed: recorded, not sent
    held: bool = False  # to an address not confirmed yet: kept until it is (then sent), or never sent


def notification_id(cause_id: str, email: str) -> str:
    """Deterministic per (cause, recipient address): a redelivered event plans the same ids."""
    return hashlib.sha256(f"{cause_id}|{email.strip().lower()}".encode()).hexdigest()[:32]


def message_id(notification: str, mail_from: str) -> str:
    """The RFC 5322 Message-ID: fixed per notification, so a re-send is recognisably the same email."""
    domain = mail_from.rsplit("@", 1)[-1].strip(" >") or "clusterxchange.eu"
    return f"<{notification}@{domain}>"


def language(preferred: str | None) -> str:
    tag = (preferred or "").lower().replace("_", "-").split("-")[0]
    return tag if tag in LANGUAGES else FALLBACK_LANGUAGE


def plan_emails(cause_id: str, event_name: str, audience: Audience, opted_out: frozenset[str] = frozenset(),
                unconfirmed: frozenset[str] = frozenset()) -> list[PlannedEmail]:
    """The emails one event causes: one per recipient address, whatever roles it holds; those to
    an organisation's contact address not confirmed yet are held."""
    planned: dict[str, PlannedEmail] = {}
    for role, template in ROUTES.get(event_name, ()):
        for recipient in audience.of(role):
            address = recipient.email.strip().lower()
            if address in planned or address == ERASED_EMAIL:
                continue  # the same person in two roles hears once; an erased contact person never
            mandatory = TEMPLATES[template]
            planned[address] = PlannedEmail(notification_id(cause_id, address), recipient, template, mandatory,
                                            suppressed=not mandatory and address in opted_out,
                                            held=held(recipient, unconfirmed))
    return list(planned.values())


def held(recipient: Recipient, unconfirmed: frozenset[str]) -> bool:
    return recipient.role in CONFIRMED_ROLES and recipient.email.strip().lower() in unconfirmed


def needs_confirmation(recipients: list[Recipient]) -> list[str]:
    """The addresses among ``recipients`` that must be confirmed before they hear anything."""
    return sorted({r.email.strip().lower() for r in recipients
                   if r.role in CONFIRMED_ROLES and r.email.strip().lower() != ERASED_EMAIL})


def confirmation(address: str, language_tag: str | None) -> PlannedEmail:
    """The first email to a contact address: the confirmation, one per address (its id says so),
    showing nothing its giver wrote (the template uses no name)."""
    recipient = Recipient(VISITOR, address, "", language(language_tag))
    return PlannedEmail(notification_id(ADDRESS_CONFIRMATION, address), recipient, ADDRESS_CONFIRMATION, True)


def backoff(attempt: int, base_seconds: float, cap_seconds: float) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped."""
    return min(base_seconds * 2 ** max(attempt - 1, 0), cap_seconds)


# ---- reminders -------------------------------------------------------------------------------

AGREEMENT, STARTING_SOON, REPORT_DUE = "agreement_not_accepted", "exchange_starting_soon", "report_due"
REMINDER_TEMPLATES = {AGREEMENT: "reminder_agreement_not_accepted", STARTING_SOON: "reminder_exchange_starting_soon",
                      REPORT_DUE: "reminder_report_due"}
# Events after which a reminder no longer makes sense.
ALL_REMINDERS = (AGREEMENT, STARTING_SOON, REPORT_DUE)
CANCELLED_BY: dict[str, tuple[str, ...]] = {
    "grant_agreement.accepted": (AGREEMENT,),
    "exchange.started": (STARTING_SOON,),
    "report.submitted": (REPORT_DUE,),
    "application.withdrawn": ALL_REMINDERS,
    "application.cancelled": ALL_REMINDERS,
    "exchange.closed": ALL_REMINDERS,
    "commitment.released": ALL_REMINDERS,
    "host.declined": ALL_REMINDERS,
    "grant.refused": ALL_REMINDERS,
    "exchange.no_show": ALL_REMINDERS,
    "report.accepted": (REPORT_DUE,),
}
SCHEDULED_BY = ("grant_agreement.issued", "host.accepted")
RESCHEDULED_BY = ("exchange.completed",)  # the report falls due from the actual end
MORNING = time(8, 0, tzinfo=UTC)


def concerns_people(event_name: str) -> bool:
    """Does this event send, schedule or cancel anything for the people of an application?"""
    return (event_name in ROUTES or event_name in CANCELLED_BY or event_name in SCHEDULED_BY
            or event_name in RESCHEDULED_BY or event_name == "payment.ordered")


@dataclass(frozen=True)
class ReminderPolicy:
    agreement_days: int = 7
    starting_soon_days: int = 7
    report_due_days: int = 1


@dataclass(frozen=True)
class Reminder:
    kind: str
    application_id: str
    due_at: datetime

    @property
    def reminder_id(self) -> str:
        return f"{self.kind}:{self.application_id}"


@dataclass(frozen=True)
class ExchangeDates:
    planned_start: datetime
    planned_end: datetime


def reminders_for(event_name: str, application_id: str, happened_at: datetime, dates: ExchangeDates | None,
                  policy: ReminderPolicy) -> list[Reminder]:
    """Reminders an event schedules: the agreement N days after it was issued; departure and
    report once the host has accepted."""
    if event_name == "grant_agreement.issued":
        return [Reminder(AGREEMENT, application_id, happened_at + timedelta(days=policy.agreement_days))]
    if event_name == "host.accepted" and dates is not None:
        before, after = timedelta(days=policy.starting_soon_days), timedelta(days=policy.report_due_days)
        return [Reminder(STARTING_SOON, application_id, dates.planned_start - before),
                Reminder(REPORT_DUE, application_id, dates.planned_end + after)]
    return []


def rescheduled_reminders(event_name: str, application_id: str, data: dict,
                          policy: ReminderPolicy) -> list[Reminder]:
    """Reminders an event moves: the report one from the actual end the host confirmed, not the planned one."""
    if event_name == "exchange.completed" and data.get("actual_end"):
        actual_end = morning_of(datetime.fromisoformat(str(data["actual_end"])).date())
        return [Reminder(REPORT_DUE, application_id, actual_end + timedelta(days=policy.report_due_days))]
    return []


def plan_reminder(cause_id: str, kind: str, audience: Audience, opted_out: frozenset[str] = frozenset(),
                  unconfirmed: frozenset[str] = frozenset()) -> list[PlannedEmail]:
    """Reminders go to the visitor, who has something to do (accept, travel, report)."""
    template = REMINDER_TEMPLATES[kind]
    mandatory = TEMPLATES[template]
    return [PlannedEmail(notification_id(cause_id, r.email), r, template, mandatory,
                         suppressed=not mandatory and r.email.strip().lower() in opted_out,
                         held=held(r, unconfirmed))
            for r in audience.of(VISITOR)]


def morning_of(day) -> datetime:
    return datetime.combine(day, MORNING)


def reminder_still_relevant(kind: str, now: datetime, dates: ExchangeDates | None) -> bool:
    """A departure reminder that comes after the departure (the service was down) is noise."""
    if kind == STARTING_SOON and dates is not None:
        return now < dates.planned_start
    return True


# ---- money and webhooks ----------------------------------------------------------------------

def format_euros(cents: int, lang: str) -> str:
    """Integer cents shown the way each language writes euros."""
    whole, rest = divmod(abs(int(cents)), 100)
    sign = "-" if cents < 0 else ""
    grouped = f"{whole:,}"
    if lang == "fr":
        return f"{sign}{grouped.replace(',', NARROW_SPACE)},{rest:02d} €"
    if lang == "de":
        return f"{sign}{grouped.replace(',', '.')},{rest:02d} €"
    return f"{sign}€{grouped}.{rest:02d}"


def wants(event_types: list[str], ce_type: str) -> bool:
    """A subscription names event types by full CloudEvents type, by short name or '*'."""
    short = ce_type.removeprefix("eu.clusterxchange.").rsplit(".v", 1)[0]
    return any(t in ("*", ce_type, short) for t in event_types)


# Fields that name or reach a person: kept from subscribers scoped to partnerships, whose
# systems are not the programme's (a programme-wide subscription is run by the programme).
CONTACT_FIELDS = frozenset({"contact", "contact_email", "email", "phone"})


def without_contacts(value):
    """A copy of event data without contact names, emails and phones, at any depth, nor the texts
    an organisation's people wrote (a report's, a host's feedback: they may name anyone); a
    report's outcomes that name the programme's kinds stay."""
    if isinstance(value, dict):
        if written_by(value):
            value = {k: [o for o in v if o in OUTCOME_KINDS] if k == "outcomes" else v
                     for k, v in value.items() if k == "outcomes" or k not in WRITTEN}
        return {k: without_contacts(v) for k, v in value.items() if k not in CONTACT_FIELDS}
    if isinstance(value, list):
        return [without_contacts(v) for v in value]
    return value


def within(scope: list[str] | None, sub: dict) -> bool:
    """May staff of the partnerships ``scope`` (None: programme-wide) manage this subscription?
    Only if every partnership it hears of is theirs; a programme-wide one only programme-wide."""
    if scope is None:
        return True
    return not sub.get("programme_wide") and set(sub.get("partnership_ids") or ["?"]) <= set(scope)


def owner_lapsed(sub: dict, now: datetime, check_seconds: float) -> bool:
    """Has the owner not shown for ``check_seconds`` that he still belongs to the partnerships the
    subscription hears of (a call of his with a token holding his role there)? Then it stops."""
    seen = sub.get("owner_seen_at") or sub.get("created_at")
    return seen is not None and (now - seen).total_seconds() >= check_seconds


def signing_secrets(sub: dict, now: datetime) -> list[str]:
    """The secrets in force: the current one, and the previous one during its grace period."""
    until = sub.get("previous_secret_until")
    if sub.get("previous_secret") and until is not None and until > now:
        return [sub["secret"], sub["previous_secret"]]
    return [sub["secret"]]


def webhook_delivery_id(subscription_id: str, event_id: str) -> str:
    return f"{subscription_id}:{event_id}"


def should_disable(failing_since: datetime | None, now: datetime, disable_after_seconds: float) -> bool:
    """An endpoint is disabled once a delivery has exhausted its retries and it has failed for long."""
    return failing_since is not None and (now - failing_since).total_seconds() >= disable_after_seconds


# ---- what templates see ----------------------------------------------------------------------

def email_context(application: dict, call: dict | None, event_data: dict) -> dict:
    """The facts an email about an application may show: its parties, dates and the event's own
    fields (reasons, amounts in cents...). Templates pick what they need."""
    visitor, host = application.get("visitor") or {}, application.get("host") or {}
    return {
        "reasons": [], "reason": "",
        **event_data,
        "application_id": application["_id"],
        "call_title": (call or {}).get("title", ""),
        "visitor_name": visitor.get("legal_name", ""), "visitor_city": visitor.get("city", ""),
        "visitor_country": visitor.get("country", ""),
        "host_name": host.get("legal_name", ""), "host_city": host.get("city", ""),
        "host_country": host.get("country", ""),
        "planned_start": str(application.get("planned_start", "")),
        "planned_end": str(application.get("planned_end", "")),
    }


CLOUDEVENT_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype",
                         "correlationid", "causationid")


def structured_cloudevent(envelope: dict) -> dict:
    """CloudEvents 1.0 structured mode: the attributes and ``data`` in one JSON object."""
    event = {k: envelope[k] for k in CLOUDEVENT_ATTRIBUTES if envelope.get(k) is not None}
    return {**event, "data": envelope["data"]}

"""The record of processing (GDPR art. 30) as data: what each service holds of a data subject, why,
for how long and who may see it. An export gives it to the subject beside their data (art. 15:
the purposes, the recipients, the retention); README's "Record of processing" is the same table."""

from __future__ import annotations

from typing import Any

RECORD: list[dict[str, Any]] = [
    {"service": "applications", "what": "organisations: the contact person's name, e-mail, phone, language; the "
     "owner's subject", "purpose": "enrolment; who may act for the organisation",
     "retention": "while enrolled; erased on request",
     "recipients": "the organisation's owner, the staff of the partnerships it joined, programme managers"},
    {"service": "applications", "what": "exchanges: both parties' snapshots; objectives, report and host feedback; "
     "the timeline", "purpose": "the exchange's file, its follow-up and the programme's audit",
     "retention": "the programme's retention of grant files; contacts and the organisation's texts erased on "
     "request", "recipients": "the two parties (each its own part), the partnership's staff, programme managers"},
    {"service": "assessment", "what": "owners' subjects; applications as submitted, without contact persons",
     "purpose": "eligibility, scoring, conflicts of interest", "retention": "the life of the call",
     "recipients": "the partnership's assessors and managers"},
    {"service": "grants", "what": "legal names and countries of the parties; no contact data",
     "purpose": "the grant agreement, payments and ledger the programme must keep",
     "retention": "the programme's retention of grant files",
     "recipients": "grant officers, the partnership's finance system"},
    {"service": "notifications", "what": "contacts: name, e-mail, language", "purpose": "to write to the people "
     "of an exchange", "retention": "while enrolled", "recipients": "the partnership's staff"},
    {"service": "notifications", "what": "mail log: recipient's name and e-mail, the e-mail's context",
     "purpose": "proof that a participant was told", "retention": "MAIL_LOG_RETENTION_DAYS (180) after it was "
     "sent or failed", "recipients": "the partnership's staff, programme managers"},
    {"service": "notifications", "what": "webhook deliveries: the delivered event", "purpose": "retries and the "
     "subscriber's delivery log", "retention": "WEBHOOK_DELIVERY_RETENTION_DAYS (30)",
     "recipients": "the outside systems subscribed (each delivery names its subscription)"},
    {"service": "notifications", "what": "opt-outs, unsubscribe links: e-mail addresses",
     "purpose": "to honour an unsubscription", "retention": "until the address opts in again", "recipients": "nobody"},
    {"service": "all", "what": "events on the broker's topics (contacts and texts sealed under the subject's key)",
     "purpose": "replay and rebuild, subscribers", "retention": "without limit, unreadable once the key is erased",
     "recipients": "the services and subscribers the broker's ACLs allow"},
]

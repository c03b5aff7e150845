"""The read model's documents, built from the events that describe them (pure).

An HTTP request and a replay of the topics go through the same functions, so a rebuilt
read model is the same as the one built live.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ApplicationSubmitted, CallCancelled, CallClosed, CallPublished,
                                           MembershipJoined, OfferPublished, OfferWithdrawn,
                                           OrganisationEnrolled, PartnershipFormed, PersonalDataErased,
                                           PersonalDataExportRequested)

from applications import domain


def organisation(event: OrganisationEnrolled) -> dict[str, Any]:
    return {"_id": event.organisation_id, **event.model_dump(mode="json")}


def membership(event: MembershipJoined) -> dict[str, Any]:
    """An organisation's membership of a partnership, as its document keeps it (under the partnership's id)."""
    return {"state": str(domain.Membership.JOINED), "since": event.joined_at.isoformat(), "by": event.joined_by}


def partnership(event: PartnershipFormed) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    return {"_id": event.partnership_id, "name": data.pop("partnership_name"), **data}


def call(event: CallPublished) -> dict[str, Any]:
    """A call as published, or as changed before it opened (CallUpdated: its whole state)."""
    return {"_id": event.call_id, **event.model_dump(mode="json", exclude={"budget_change_cents", "updated_by"})}


def offer(event: OfferPublished) -> dict[str, Any]:
    return {"_id": event.offer_id, **event.model_dump(mode="json")}


MAX_TERMS = 300  # search terms kept per offer: its title's first, then its description's
MAX_QUERY_TERMS = 8
SEARCHED = ("ecosystem", "country", "window_start", "window_end")  # an offer's fields a search filters on


def words(text: str) -> list[str]:
    """Search terms: lower case, accents off, split at anything not a letter or digit, two letters
    at least (so "AI" counts), each once, in order."""
    plain = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return list(dict.fromkeys(w for w in re.split(r"[^a-z0-9]+", plain) if len(w) >= 2))


def offer_terms(offer: dict[str, Any]) -> list[dict[str, Any]]:
    """The offer's entries in the search index: one per term, with the fields a search filters and
    sorts on (a withdrawn offer has none)."""
    if offer.get("status") == domain.OFFER_WITHDRAWN:
        return []
    return [{"_id": f"{offer['_id']} {t}", "term": t, "offer_id": offer["_id"],
             **{k: offer.get(k) for k in SEARCHED}} for t in searchable(offer)]


def searchable(offer: dict[str, Any]) -> list[str]:
    return words(f"{offer.get('title', '')} {offer.get('description', '')}")[:MAX_TERMS]


def call_closure(event: CallClosed) -> dict[str, Any]:
    """What closing a call early changes on its document (set over it)."""
    return {"_id": event.call_id, "status": domain.CALL_CLOSED, "closes_on": event.closed_on.isoformat(),
            "closed_reason": event.reason}


def call_cancellation(event: CallCancelled) -> dict[str, Any]:
    return {"_id": event.call_id, "status": domain.CALL_CANCELLED, "cancelled_reason": event.reason}


def offer_withdrawal(event: OfferWithdrawn) -> dict[str, Any]:
    """What a withdrawal changes on the offer's document (set over it)."""
    return {"_id": event.offer_id, "status": domain.OFFER_WITHDRAWN, "withdrawn_reason": event.reason,
            "revision": event.revision}


def erasure(event: PersonalDataErased) -> dict[str, Any]:
    return {"_id": event.erasure_id, **event.model_dump(mode="json", exclude={"erasure_id"})}


def export(event: PersonalDataExportRequested) -> dict[str, Any]:
    return {"_id": event.export_id, **event.model_dump(mode="json", exclude={"export_id"})}


def entry(envelope: Envelope) -> dict[str, Any]:
    return domain.timeline_entry(event_id=envelope.id, ce_type=envelope.type, source=envelope.source,
                                 at=envelope.time, data=envelope.data)


def application(event: ApplicationSubmitted, envelope: Envelope) -> dict[str, Any]:
    """A submitted exchange with its first timeline entry; filters read the flat fields."""
    data = event.model_dump(mode="json")
    timeline, status = domain.fold([entry(envelope)])
    return {"_id": event.application_id, **data,
            "visitor_id": event.visitor.organisation_id, "host_id": event.host.organisation_id,
            "countries": sorted({event.visitor.country, event.host.country}),
            "status": str(status), "milestones": timeline, "revision": 1}


# What each follow-up event sets on the exchange, beside its timeline (the same live and in a rebuild).
def follow_up_fields(name: str, data: dict[str, Any]) -> dict[str, Any]:
    match name:
        case "preparation.updated":
            return {"preparation": {k: data.get(k, False) for k in ("travel_booked", "insurance", "agenda_agreed",
                                                                     "ready")}}
        case "exchange.started":
            return {"actual_start": data.get("actual_start")}
        case "exchange.completed":
            return {k: data.get(k) for k in ("actual_start", "actual_end", "actual_working_days", "report_due_on")}
        case "report.submitted":
            return {"report": {k: data.get(k) for k in ("summary", "outcomes", "learnt", "satisfaction", "free_text",
                                                        "submitted_by", "late", "organisation_id")}}
        case "host_feedback.submitted":
            return {"host_feedback": {k: data.get(k) for k in ("satisfaction", "free_text", "submitted_by",
                                                               "organisation_id")}}
        case "report.changes_requested":
            return {"report_review": {"outcome": "changes_requested", "reasons": data.get("reasons", []),
                                      "by": data.get("requested_by")}}
        case "report.accepted":
            return {"report_review": {"outcome": "accepted", "reasons": [], "by": data.get("accepted_by")}}
    return {}

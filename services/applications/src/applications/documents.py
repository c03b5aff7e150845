"""The read model's documents, built from the events that describe them (pure).

An HTTP request and a replay of the topics go through the same functions, so a rebuilt
read model is the same as the one built live.
"""

from __future__ import annotations

from typing import Any

from cx_shared.envelope import Envelope
from cx_shared.events.applications import (ApplicationSubmitted, CallPublished, OfferPublished,
                                           OrganisationEnrolled, PartnershipFormed)

from applications import domain


def organisation(event: OrganisationEnrolled) -> dict[str, Any]:
    return {"_id": event.organisation_id, **event.model_dump(mode="json")}


def partnership(event: PartnershipFormed) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    return {"_id": event.partnership_id, "name": data.pop("partnership_name"), **data}


def call(event: CallPublished) -> dict[str, Any]:
    return {"_id": event.call_id, **event.model_dump(mode="json")}


def offer(event: OfferPublished) -> dict[str, Any]:
    return {"_id": event.offer_id, **event.model_dump(mode="json")}


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
            "status": str(status), "timeline": timeline, "revision": 1}

"""Personal data of a data subject (an organisation's contact person), written once for the four
services: what an erased contact becomes, how a stored document forgets one, and the tombstone
every service keeps per erased subject so that no later event (a redelivery, a replay, a
rebuild) brings the data back.

The data subject is named by its organisation's id: the contact person has no id of their own,
and every event that carries a contact carries it beside the organisation's id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

ERASED = "[erased]"
ERASED_EMAIL = "erased@erased.example"  # a valid address, so contracts still validate; never mailed
ERASED_CONTACT = {"name": ERASED, "email": ERASED_EMAIL, "phone": None, "language": "en"}
CONTACT_PARTS = ("name", "email", "phone")


def is_erased_contact(contact: Mapping[str, Any] | None) -> bool:
    return bool(contact) and contact.get("email") == ERASED_EMAIL


def contacts_of(value: Any, subject_id: str) -> list[dict]:
    """Every contact stored for the subject in a document, at any depth: a dict naming the
    organisation with its contact (an enrolment, a participant snapshot)."""
    found: list[dict] = []
    if isinstance(value, Mapping):
        if value.get("organisation_id") == subject_id and isinstance(value.get("contact"), Mapping):
            found.append(dict(value["contact"]))
        for item in value.values():
            found += contacts_of(item, subject_id)
    elif isinstance(value, list):
        for item in value:
            found += contacts_of(item, subject_id)
    return found


def needles(contacts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The strings that identify the person: names, e-mail addresses and phones, longest first
    (a name inside an address is replaced as the address)."""
    found = {str(c[part]) for c in contacts if not is_erased_contact(c) for part in CONTACT_PARTS if c.get(part)}
    return sorted(found, key=len, reverse=True)


def redact(value: Any, subject_id: str, found: list[str]) -> Any:
    """A copy of `value` without the subject's personal data: each of its contacts becomes the
    erased placeholder, and every string that holds one of `found` (free text, a mail log's
    context, a webhook body) has it replaced, whatever the case."""
    # A JSON text kept as a string (a webhook's body) holds "García" as "Garc\\u00eda": both go.
    variants = sorted({v for n in found for v in (n, json.dumps(n)[1:-1])}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(v) for v in variants), re.IGNORECASE) if variants else None
    return _redact(value, subject_id, pattern)


def _redact(value: Any, subject_id: str, pattern: re.Pattern | None) -> Any:
    if isinstance(value, Mapping):
        result = {k: _redact(v, subject_id, pattern) for k, v in value.items()}
        if result.get("organisation_id") == subject_id and isinstance(result.get("contact"), Mapping):
            result["contact"] = {**ERASED_CONTACT, "language": value["contact"].get("language", "en")}
        return result
    if isinstance(value, list):
        return [_redact(v, subject_id, pattern) for v in value]
    if isinstance(value, str) and pattern is not None:
        return _redact_text(value, pattern)
    return value


def _redact_text(text: str, pattern: re.Pattern) -> str:
    if "@" in text and pattern.fullmatch(text):
        return ERASED_EMAIL  # an address field stays an address
    return pattern.sub(ERASED, text)


def subjects_in(value: Any) -> set[str]:
    """The organisations whose contact a piece of event data carries."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        if isinstance(value.get("organisation_id"), str) and isinstance(value.get("contact"), Mapping):
            found.add(value["organisation_id"])
        for item in value.values():
            found |= subjects_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= subjects_in(item)
    return found

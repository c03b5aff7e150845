"""Personal data of a data subject (an organisation's contact person), written once for the four
services: what an erased contact becomes, how a stored document forgets one, and the tombstone
every service keeps per erased subject so that no later event (a redelivery, a replay, a
rebuild) brings the data back.

The data subject is named by its organisation's id: the contact person has no id of their own,
and every event that carries a contact carries it beside the organisation's id. So do the texts
an organisation's people write (a visitor's report, a host's feedback): wherever they are kept,
the organisation's id is beside them, and its erasure erases them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cx_shared.vocabulary import OUTCOME_KINDS

ERASED = "[erased]"
ERASED_EMAIL = "erased@erased.example"  # a valid address, so contracts still validate; never mailed
ERASED_CONTACT = {"name": ERASED, "email": ERASED_EMAIL, "phone": None, "language": "en"}
CONTACT_PARTS = ("name", "email", "phone")
# The texts an organisation writes (a report, a host's feedback), or a timeline's summary of one,
# kept beside `organisation_id`. Outcomes that name the programme's kinds are not personal.
WRITTEN = ("summary", "learnt", "free_text", "outcomes")


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


def written_by(value: Any) -> str | None:
    """The organisation whose texts a mapping holds (a report, feedback, an entry about one), if any."""
    if isinstance(value, Mapping) and isinstance(value.get("organisation_id"), str) and "contact" not in value \
            and any(field in value for field in WRITTEN):
        return value["organisation_id"]
    return None


def erased_outcomes(outcomes: list[str]) -> list[str]:
    """The programme's kinds stay; the visitor's own words go."""
    return [o if o in OUTCOME_KINDS else ERASED for o in outcomes]


def _redact(value: Any, subject_id: str, pattern: re.Pattern | None) -> Any:
    if isinstance(value, Mapping):
        result = {k: _redact(v, subject_id, pattern) for k, v in value.items()}
        if result.get("organisation_id") == subject_id and isinstance(result.get("contact"), Mapping):
            result["contact"] = {**ERASED_CONTACT, "language": value["contact"].get("language", "en")}
        if written_by(result) == subject_id:
            result |= {f: erased_outcomes(v) if isinstance(v, list) else ERASED
                       for f in WRITTEN if (v := result.get(f))}
        return result
    if isinstance(value, list):
        return [_redact(v, subject_id, pattern) for v in value]
    if isinstance(value, str):
        return _redact_json(value, subject_id, pattern) or (_redact_text(value, pattern) if pattern else value)
    return value


def _redact_json(text: str, subject_id: str, pattern: re.Pattern | None) -> str | None:
    """A JSON object kept as text (a webhook's signed body), redacted as the object; None when it
    is no JSON object or nothing in it changes."""
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    redacted = _redact(parsed, subject_id, pattern)
    return json.dumps(redacted, separators=(",", ":")) if redacted != parsed else None


def _redact_text(text: str, pattern: re.Pattern) -> str:
    if "@" in text and pattern.fullmatch(text):
        return ERASED_EMAIL  # an address field stays an address
    return pattern.sub(ERASED, text)


def subjects_in(value: Any) -> set[str]:
    """The organisations whose contact, or texts, a piece of event data carries."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        if isinstance(value.get("organisation_id"), str) and isinstance(value.get("contact"), Mapping):
            found.add(value["organisation_id"])
        if author := written_by(value):
            found.add(author)
        for item in value.values():
            found |= subjects_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= subjects_in(item)
    return found


def without_others(value: Any, subject_id: str) -> Any:
    """A copy of `value` for the subject's export: every contact person of another organisation
    (a party's snapshot, an enrolment) goes, and so do the texts another organisation wrote (a
    report, feedback, an entry quoting one); the subject's own stay. An export is the subject's data,
    never a third party's."""
    if isinstance(value, Mapping):
        others = isinstance(value.get("organisation_id"), str) and value["organisation_id"] != subject_id
        result = {k: without_others(v, subject_id) for k, v in value.items()
                  if not (others and k == "contact")}
        if (author := written_by(result)) and author != subject_id:
            result = {k: v for k, v in result.items() if k not in WRITTEN}
        return result
    if isinstance(value, list):
        return [without_others(v, subject_id) for v in value]
    return value

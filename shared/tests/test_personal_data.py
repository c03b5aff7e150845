"""The pure parts of personal data: redaction of a stored document and sealing under a subject's key."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cx_shared.events.common import Contact
from cx_shared.personal_data import ERASED, ERASED_EMAIL, contacts_of, needles, redact, subjects_in
from cx_shared.personal_data.keys import Unreadable, seal, unseal

ANA = {"name": "Ana García", "email": "ana@madrid.example.es", "phone": "+34 600 111 222", "language": "es"}


def test_a_document_forgets_the_subject_wherever_it_holds_them():
    doc = {"visitor": {"organisation_id": "org-1", "legal_name": "Madrid Photonics", "contact": ANA},
           "host": {"organisation_id": "org-2", "contact": {"name": "Hans", "email": "hans@example.de"}},
           "context": {"greeting": "Dear ANA GARCÍA", "to": "ana@madrid.example.es"},
           "body": json.dumps({"contact": ANA}), "notes": ["call +34 600 111 222"]}
    found = needles(contacts_of(doc, "org-1"))
    clean = redact(doc, "org-1", found)
    assert clean["visitor"]["contact"] == {"name": ERASED, "email": ERASED_EMAIL, "phone": None, "language": "es"}
    assert Contact.model_validate(clean["visitor"]["contact"])  # still a valid contact for the contracts
    assert clean["host"] == doc["host"] and clean["visitor"]["legal_name"] == "Madrid Photonics"
    assert clean["context"] == {"greeting": f"Dear {ERASED}", "to": ERASED_EMAIL}
    assert clean["notes"] == [f"call {ERASED}"]
    assert "Garc" not in clean["body"] and "ana@" not in clean["body"]  # JSON-escaped "Garc\u00eda" too
    assert subjects_in(doc) == {"org-1", "org-2"}


def test_an_erased_placeholder_is_no_needle():
    assert needles([{"name": ERASED, "email": ERASED_EMAIL}]) == []


def test_a_sealed_value_opens_with_its_subjects_key_only():
    key = AESGCM.generate_key(bit_length=256)
    sealed = seal(key, "org-1", ANA)
    assert "Ana" not in sealed and unseal(key, "org-1", sealed) == ANA
    with pytest.raises(Unreadable):
        unseal(key, "org-2", sealed)  # the subject is bound to it
    with pytest.raises(Unreadable):
        unseal(AESGCM.generate_key(bit_length=256), "org-1", sealed)
    with pytest.raises(Unreadable):
        unseal(None, "org-1", sealed)  # erased: no key

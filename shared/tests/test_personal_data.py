"""The pure parts of personal data: redaction of a stored document, sealing under a subject's key, and
the events that travel sealed (enrolments, reports, host feedback) opened again, or erased."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cx_shared.consumer import Delivery
from cx_shared.envelope import Envelope
from cx_shared.events.applications import (HostFeedbackSubmitted, HostFeedbackSubmittedV2, OrganisationUpdated,
                                           OrganisationUpdatedV2, ReportSubmitted, ReportSubmittedV2)
from cx_shared.events.common import Contact
from cx_shared.personal_data import (ERASED, ERASED_EMAIL, contacts_of, is_erased_contact, needles, redact,
                                     subjects_in)
from cx_shared.personal_data.keys import Unreadable, seal, unseal
from cx_shared.personal_data.sealed import in_clear, sealed

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


class Keys:
    """A key ring as a consumer holds it (keys.KeyRing's reading half, without the topic)."""

    def __init__(self):
        self.keys: dict[str, bytes] = {}

    async def key_for(self, subject_id: str) -> bytes:
        return self.keys.setdefault(subject_id, AESGCM.generate_key(bit_length=256))

    async def open(self, subject_id: str, sealed: str):
        return unseal(self.keys.get(subject_id), subject_id, sealed)


REPORT = dict(application_id="app-1", call_id="call-1", submitted_by="sub-ana", organisation_id="org-1",
              summary="Met Ana García at the lab", learnt="ana@madrid.example.es taught us lasers",
              free_text="call +34 600 111 222", outcomes=["new_collaboration", "a joint MoU"], satisfaction=5)


def delivered(event) -> Delivery:
    return Delivery(envelope=Envelope.wrap(event, source="test", subject="app-1"), source="test")


async def test_a_reports_texts_travel_sealed_under_the_visitors_key_and_open_in_clear():
    keys, report = Keys(), ReportSubmitted(**REPORT)
    travelling = await sealed(report, keys)
    assert isinstance(travelling, ReportSubmittedV2) and travelling.outcome_kinds == ["new_collaboration"]
    on_the_wire = json.dumps(travelling.model_dump(mode="json"))
    assert not [t for t in ("Ana Garc", "ana@", "600 111", "the lab", "taught us", "a joint") if t in on_the_wire]
    assert travelling.satisfaction == 5 and travelling.submitted_by == "sub-ana"
    event, delivery = await in_clear(travelling, delivered(travelling), keys)
    assert event == report and delivery.envelope.data == report.model_dump(mode="json") | {
        "outcome_kinds": ["new_collaboration"]}
    assert delivery.envelope.type == ReportSubmitted.ce_type() and delivery.envelope.event() == report  # kept, it reads


async def test_host_feedback_travels_sealed_under_the_hosts_key():
    keys = Keys()
    feedback = HostFeedbackSubmitted(application_id="app-1", call_id="call-1", submitted_by="hans",
                                     organisation_id="org-2", satisfaction=4, free_text="Ana García was great")
    travelling = await sealed(feedback, keys)
    assert isinstance(travelling, HostFeedbackSubmittedV2) and "Ana Garc" not in json.dumps(travelling.model_dump())
    with pytest.raises(Unreadable):
        await keys.open("org-1", travelling.texts_sealed)  # under the host's key, not the visitor's
    assert (await in_clear(travelling, delivered(travelling), keys))[0] == feedback


async def test_once_the_key_is_gone_the_texts_read_as_erased_and_the_outcome_kinds_stay():
    keys = Keys()
    report = await sealed(ReportSubmitted(**REPORT), keys)
    feedback = await sealed(HostFeedbackSubmitted(application_id="app-1", call_id="call-1", submitted_by="hans",
                                                  organisation_id="org-2", satisfaction=4, free_text="x"), keys)
    keys.keys.clear()  # the subjects erased: their keys shredded
    event, delivery = await in_clear(report, delivered(report), keys)
    assert isinstance(event, ReportSubmitted) and event.satisfaction == 5
    assert (event.summary, event.learnt, event.free_text, event.outcomes) == (ERASED, ERASED, ERASED,
                                                                              ["new_collaboration"])
    assert delivery.envelope.data["summary"] == ERASED and "texts_sealed" not in delivery.envelope.data
    assert (await in_clear(feedback, delivered(feedback), None))[0].free_text == ERASED  # a reader without keys


async def test_an_enrolment_still_travels_sealed_by_the_same_mechanism():
    keys = Keys()
    enrolled = OrganisationUpdated(organisation_id="org-1", roles=["visitor"], legal_name="Madrid Photonics",
                                   country="ES", city="Madrid", organisation_type="cluster_organisation", contact=ANA)
    travelling = await sealed(enrolled, keys)
    assert isinstance(travelling, OrganisationUpdatedV2) and unseal(keys.keys["org-1"], "org-1",
                                                                    travelling.contact_sealed) == ANA
    assert (await in_clear(travelling, delivered(travelling), keys))[0] == enrolled
    keys.keys.clear()
    assert is_erased_contact((await in_clear(travelling, delivered(travelling), keys))[0].contact.model_dump())


def test_an_erasure_forgets_the_texts_the_organisation_wrote_and_keeps_its_structured_answers():
    report = {**REPORT, "summary": "A joint pilot", "learnt": "optics", "free_text": "thanks"}
    feedback = {"organisation_id": "org-2", "free_text": "they were on time", "satisfaction": 4}
    body = json.dumps({"type": "report.submitted", "data": report}, separators=(",", ":"))
    doc = {"report": report, "host_feedback": feedback, "webhook_body": body, "status": "reported",
           "milestones": [{"event": "report.submitted", "organisation_id": "org-1",
                           "summary": "Report submitted by sub-ana: A joint pilot"}]}
    assert subjects_in(doc) == {"org-1", "org-2"}
    clean = redact(doc, "org-1", [])
    assert {k: clean["report"][k] for k in ("summary", "learnt", "free_text", "outcomes", "satisfaction")} == {
        "summary": ERASED, "learnt": ERASED, "free_text": ERASED, "outcomes": ["new_collaboration", ERASED],
        "satisfaction": 5}
    assert clean["milestones"][0]["summary"] == ERASED and clean["status"] == "reported"
    assert clean["host_feedback"] == feedback  # the host's, not the visitor's
    assert json.loads(clean["webhook_body"])["data"] == clean["report"]
    assert redact(clean, "org-1", []) == clean  # once is enough
    assert redact(doc, "org-2", [])["host_feedback"] == {**feedback, "free_text": ERASED}


def test_an_export_keeps_the_subjects_own_and_drops_other_organisations_contacts_and_texts():
    from cx_shared.personal_data import without_others
    doc = {"visitor": {"organisation_id": "org-v", "contact": {"name": "Vera"}},
           "host": {"organisation_id": "org-h", "contact": {"name": "Hans"}, "legal_name": "H GmbH"},
           "report": {"organisation_id": "org-v", "summary": "mine"},
           "host_feedback": {"organisation_id": "org-h", "free_text": "theirs", "satisfaction": 4}}
    assert without_others(doc, "org-v") == {
        "visitor": {"organisation_id": "org-v", "contact": {"name": "Vera"}},
        "host": {"organisation_id": "org-h", "legal_name": "H GmbH"},
        "report": {"organisation_id": "org-v", "summary": "mine"},
        "host_feedback": {"organisation_id": "org-h", "satisfaction": 4}}

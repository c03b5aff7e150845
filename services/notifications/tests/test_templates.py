"""Every template renders in every language; unknown languages fall back to English."""

import pytest

from notifications.domain import LANGUAGES, TEMPLATES
from notifications.mail import render

CONTEXT = {"recipient_name": "Vera <Admin>", "role": "visitor", "application_id": "app-1", "call_title": "Call",
           "visitor_name": "Optique Lyon", "visitor_city": "Lyon", "visitor_country": "FR",
           "host_name": "Laser & Co", "host_city": "Jena", "host_country": "DE",
           "planned_start": "2026-05-04", "planned_end": "2026-05-08", "reasons": ["too short"], "reason": "busy",
           "total_cents": 123_456, "travel_cents": 100_000, "subsistence_cents": 23_456, "released_cents": 500,
           "prefinancing_cents": 60_000, "amount_cents": 60_000, "total_after_cents": 100_000,
           "finance_reference": "FIN-1", "due_on": "2026-06-08",
           "subscription_id": "sub-1", "url": "https://crm.example.org/hook", "last_error": "HTTP 500",
           "failing_since": "2026-01-01T00:00:00+00:00", "confirm_url": "https://cx.example.eu/confirmations/c0ffee"}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_renders_subject_text_and_html(template, lang):
    mail = render(template, lang, CONTEXT, unsubscribe_url="https://cx.example.eu/unsubscribe?token=t")
    assert mail.language == lang and mail.subject and "\n" not in mail.subject
    if template == "address_confirmation":  # shows nothing the enroller wrote, no name either
        assert "Vera" not in mail.text + mail.html and "Optique" not in mail.text + mail.html
        assert "confirmations/c0ffee" in mail.text and 'href="https://cx.example.eu/confirmations/c0ffee"' in mail.html
    else:
        assert "Vera <Admin>" in mail.text and "Vera &lt;Admin&gt;" in mail.html  # HTML escaped, text not
    assert f'<html lang="{lang}">' in mail.html and "unsubscribe?token=t" in mail.text


def test_languages_differ_and_unknown_ones_fall_back_to_english():
    subjects = {lang: render("application_approved", lang, CONTEXT).subject for lang in ("en", "fr", "de", "pt")}
    assert subjects["en"] == "Your application app-1 is approved"
    assert subjects["fr"] == "Votre candidature app-1 est approuvée"
    assert subjects["de"] == "Ihre Bewerbung app-1 ist genehmigt"
    assert subjects["pt"] == subjects["en"] and render("application_approved", "pt", CONTEXT).language == "en"


def test_amounts_are_shown_in_the_recipients_way_and_reasons_listed():
    assert "1.234,56 €" in render("grant_committed", "de", CONTEXT).text
    rejected = render("application_rejected", "en", CONTEXT)
    assert "- too short" in rejected.text and "<li>too short</li>" in rejected.html

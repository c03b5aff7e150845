"""Rendering (Jinja2, one file per template and language with subject/text/html blocks) and
sending over SMTP (aiosmtplib). No database here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from notifications.domain import FALLBACK_LANGUAGE, format_euros, language
from notifications.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
_text = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False, undefined=StrictUndefined,
                    keep_trailing_newline=True)
_html = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)

ROLE_LABELS = {
    "en": {"visitor": "visitor", "host": "host", "partnership_contact": "partnership contact",
           "assessor": "assessor", "grant_officer": "grant officer", "subscriber": "subscriber"},
    "fr": {"visitor": "visiteur", "host": "hôte", "partnership_contact": "contact du partenariat",
           "assessor": "évaluateur", "grant_officer": "gestionnaire de subventions", "subscriber": "abonné"},
    "de": {"visitor": "Besucher", "host": "Gastgeber", "partnership_contact": "Kontakt der Partnerschaft",
           "assessor": "Gutachter", "grant_officer": "Finanzhilfe-Sachbearbeiter", "subscriber": "Abonnent"},
}


@dataclass(frozen=True)
class Rendered:
    language: str
    subject: str
    text: str
    html: str


def render(template: str, lang: str | None, context: dict[str, Any], unsubscribe_url: str | None = None) -> Rendered:
    """The email in the recipient's language, or in English when there is no such template."""
    lang = language(lang)
    name = f"{lang}/{template}.j2"
    try:
        _text.get_template(name)
    except TemplateNotFound:
        lang, name = FALLBACK_LANGUAGE, f"{FALLBACK_LANGUAGE}/{template}.j2"
    ctx = _money({**context, "lang": lang, "role_label": ROLE_LABELS[lang].get(context.get("role", ""), ""),
                  "unsubscribe_url": unsubscribe_url}, lang)
    subject = " ".join(_block(_text, name, "subject", ctx).split())
    text, html = _block(_text, name, "text", ctx), _block(_html, name, "html", ctx)
    if unsubscribe_url:
        footer = f"{lang}/_footer.j2"
        text += _block(_text, footer, "text", ctx)
        html += _block(_html, footer, "html", ctx)
    page = _html.get_template("_layout.html.j2").render(lang=lang, subject=subject, body=_html_safe(html))
    return Rendered(lang, subject, text, page)


def _block(env: Environment, name: str, block: str, ctx: dict[str, Any]) -> str:
    template = env.get_template(name)
    return "".join(template.blocks[block](template.new_context(ctx)))


def _html_safe(html: str):
    from markupsafe import Markup
    return Markup(html)  # already escaped when its blocks were rendered


def _money(ctx: dict[str, Any], lang: str) -> dict[str, Any]:
    """Amounts travel as integer cents (``*_cents``) and are shown in the language's way."""
    shown = {k.removesuffix("_cents"): format_euros(v, lang) for k, v in ctx.items()
             if k.endswith("_cents") and isinstance(v, int)}
    return {**ctx, **shown}


def build_message(settings: Settings, *, to: str, rendered: Rendered, message_id: str,
                  unsubscribe_url: str | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    msg["Content-Language"] = rendered.language  # after the body: set_content drops Content-* headers
    return msg


class Connection:
    """One SMTP connection kept open from one message to the next: a new one per message costs a
    TCP (and TLS) handshake, EHLO and a login each time. It is opened again when it broke or sat
    idle long enough for the server to have dropped it."""

    IDLE_SECONDS = 10.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._used = 0.0

    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the SMTP server; returns once it answered 250 (accepted)."""
        if self._smtp is None or not self._smtp.is_connected or time.monotonic() - self._used > self.IDLE_SECONDS:
            await self.close()
            self._smtp = await self._open()
        try:
            await self._smtp.send_message(message)
        except BaseException:
            await self.close()  # in an unknown state: the next message starts afresh
            raise
        self._used = time.monotonic()

    async def _open(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username or None,
                               password=s.smtp_password or None, start_tls=s.smtp_starttls, use_tls=s.smtp_use_tls,
                               timeout=s.smtp_timeout_seconds)
        await smtp.connect()
        return smtp

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()

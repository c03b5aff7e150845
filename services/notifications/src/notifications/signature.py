"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent as
``X-CX-Signature: t=<unix seconds>,v1=<hex>``. Standard library only, so a subscriber can copy it.

The timestamp inside the signed text stops replays of an old delivery; the tolerance bounds how old.
While a rotated secret's grace period runs, the header carries one ``v1`` per secret in force
(``t=…,v1=<new>,v1=<previous>``): a subscriber accepts the delivery when any of them verifies with
the secret it holds, so it can switch secrets at its own pace.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-CX-Signature"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: str | list[str], timestamp: int, body: bytes) -> str:
    """The header value: one ``v1`` per secret in force, the newest first."""
    macs = [_mac(s, timestamp, body) for s in ([secrets] if isinstance(secrets, str) else secrets)]
    return ",".join([f"t={timestamp}", *(f"v1={m}" for m in macs)])


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """True when one ``v1`` of ``header`` signs ``body`` with ``secret``, made less than ``tolerance`` seconds ago."""
    try:
        parts = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(dict(parts)["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, value) for key, value in parts if key == "v1")

"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent as
``X-CX-Signature: t=<unix seconds>,v1=<hex>``. Standard library only, so a subscriber can copy it.

The timestamp inside the signed text stops replays of an old delivery; the tolerance bounds how old.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-CX-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` made less than ``tolerance`` seconds ago."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))

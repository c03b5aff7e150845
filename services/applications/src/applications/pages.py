"""Reading a long list a page at a time (pure): a cursor names where the last page ended (its
sort key), so every page costs an index range, never a skip over all that came before."""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import Query

from applications.rules import refuse, violation

# An opaque cursor: the sort key of the last item read, as base64url JSON (bounded, plain ASCII).
Cursor = Annotated[str | None, Query(max_length=400, pattern=r"^[A-Za-z0-9_-]+={0,2}$",
                                     description="`next` of the previous page; absent for the first")]


def cursor(*key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode()


def key_of(text: str | None, field: str, size: int) -> tuple[str, ...] | None:
    """The sort key a cursor names; 422 naming the field when it is none of ours."""
    if text is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        key = None
    if not (isinstance(key, list) and len(key) == size and all(isinstance(k, str) and len(k) <= 200 for k in key)):
        refuse([violation(f"query.{field}", "cursor", "not a cursor this list gave: use its `next`")])
    return tuple(key)

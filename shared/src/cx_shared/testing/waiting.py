"""Waiting for what the system does: a test polls for the outcome, never sleeps a fixed time."""

from __future__ import annotations

import asyncio
import time


async def eventually(check, timeout: float = 30.0, what: str = "condition"):
    """Poll an async or plain check until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)

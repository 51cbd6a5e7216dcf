"""Hearing a waiting request's client hang up, as it happens.

A long poll (a Manager's claim) that waits for work must not hand tasks to a client that has left: they would
wait for their lease to run out. Starlette's `Request.is_disconnected` answers that only by yielding to the
event loop once, so every answer checked that way went out after whatever else was ready (another request's
answer, typically the very submission whose tasks it carries). A listener on the request's `receive` hears the
disconnect instead while the request waits, wakes the wait so it ends at once, and leaves a flag the answer
reads without yielding.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request


class HangUp:
    """Whether the client has gone (set by `listening`)."""

    def __init__(self) -> None:
        self.heard = False


@contextlib.asynccontextmanager
async def listening(request: Request, wake: asyncio.Event) -> AsyncIterator[HangUp]:
    """While the block runs, a client that hangs up sets `heard` and `wake`. The request's body must have been
    read whole: what the server sends after it is the disconnect (or nothing until the answer is sent)."""
    hang_up = HangUp()

    async def listen() -> None:
        while (await request.receive())["type"] == "http.request":
            pass  # an empty trailing body part, from servers that send one
        hang_up.heard = True
        wake.set()

    listener = asyncio.create_task(listen())
    try:
        yield hang_up
    finally:
        listener.cancel()

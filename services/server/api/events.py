"""The Server-Sent Events stream of farm changes; `Last-Event-ID` resumes where a client left off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.protocol.common import ID_MAX, KEEPALIVE_HEADER, Int, utcnow
from services.server.api.deps import TokenDep, UserDep, token_user
from services.server.api.event_hub import EventHub, frame, read_frames
from services.server.store import events
from services.server.store.errors import Invalid

router = APIRouter(tags=["events"])

POLL_SECONDS = 1.0  # fallback for events written by other Server processes
# a comment line this often on an idle stream, announced in KEEPALIVE_HEADER: a client takes a few times this of
# silence for a Server that hangs (stopped, a paused VM) and moves to the next (it waited its 60 s read timeout).
# One short write per idle stream at the wake-up the token check makes anyway.
KEEPALIVE_SECONDS = 5.0
# an open stream's token is looked at again this often (a dict lookup; the database at most every 10 s): a revoked
# or expired token, or a disabled user's, ends the stream, and the client's reconnection gets the 401
TOKEN_RECHECK_SECONDS = 5.0


def _hub(request: Request) -> EventHub:
    """The process's one event watcher, made at the first event-stream client."""
    hub: EventHub | None = getattr(request.app.state, "event_hub", None)
    if hub is None:
        hub = request.app.state.event_hub = EventHub(
            request.app.state.read_sessions, request.app.state.notifier, POLL_SECONDS
        )
    return hub


@router.get("/events", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    _: UserDep,
    token: TokenDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[Int | None, Query(ge=0, le=ID_MAX, description="resume after this event id")] = None,
) -> StreamingResponse:
    makers = request.app.state.read_sessions

    def newest() -> int:
        with makers() as s:
            return events.newest_id(s)

    def oldest() -> int | None:
        with makers() as s:
            return events.oldest_id(s)

    if last_event_id is not None:
        text = last_event_id.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= ID_MAX):
            raise Invalid(f"Last-Event-ID must be an event id (a whole number up to {ID_MAX})", field="Last-Event-ID")
        start = int(text)
    elif after is not None:
        start = after
    else:
        start = await run_in_threadpool(newest)

    hub = _hub(request)

    async def stream() -> AsyncIterator[bytes]:
        last = start
        yield b"retry: 1000\n\n"
        first = await run_in_threadpool(oldest)
        if last and first is not None and first > last + 1:
            # the client missed more than the retention window: it must reload everything
            yield frame(first - 1, "reset", utcnow().isoformat(), {"reason": "events expired"})
            last = first - 1
        elif last and last > (top := await run_in_threadpool(newest)):
            # ahead of every event here (a database restored or made anew, another farm): the stream waited for
            # ids past the client's and said nothing; the client's view is of another history, so it reloads
            yield frame(top, "reset", utcnow().isoformat(), {"reason": "event id ahead of this Server's events"})
            last = top
        clock = asyncio.get_running_loop().time
        checked = sent = clock()
        with hub.listening():
            while True:
                if clock() - checked >= TOKEN_RECHECK_SECONDS:
                    if await token_user(request, token, count_failure=False) is None:
                        return
                    checked = clock()
                frames = hub.frames_after(last)
                if frames is None:  # from further back than the hub remembers: from the database, a page at a time
                    frames = await run_in_threadpool(read_frames, makers, last)
                    if not frames:  # nothing newer stored: the hub has not made its first read yet
                        await hub.wait(POLL_SECONDS)
                        continue
                for event_id, data in frames:
                    yield data
                    last = event_id
                if frames:
                    sent = clock()
                    continue
                await hub.wait(min(TOKEN_RECHECK_SECONDS, KEEPALIVE_SECONDS - (clock() - sent)))
                # a timer may fire a hair early: a wait that ran its course counts as the whole period
                if clock() - sent >= KEEPALIVE_SECONDS - 0.05 and not hub.frames_after(last):
                    yield b": keep-alive\n\n"
                    sent = clock()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", KEEPALIVE_HEADER: f"{KEEPALIVE_SECONDS:g}"},
    )

"""The Server-Sent Events stream of farm changes; `Last-Event-ID` resumes where a client left off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.protocol.common import ID_MAX, utcnow
from services.server import events
from services.server.api.deps import UserDep
from services.server.store.convert import aware
from services.server.store.errors import Invalid

router = APIRouter(tags=["events"])

POLL_SECONDS = 1.0  # fallback for events written by other Server processes
KEEPALIVE_SECONDS = 15.0


def _frame(event_id: int, type_: str, time: str, data: object) -> bytes:
    body = json.dumps({"id": event_id, "type": type_, "time": time, "data": data}, separators=(",", ":"))
    return f"id: {event_id}\nevent: {type_}\ndata: {body}\n\n".encode()


@router.get("/events", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    _: UserDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, le=ID_MAX, description="resume after this event id")] = None,
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

    async def stream() -> AsyncIterator[bytes]:
        last = start
        yield b"retry: 1000\n\n"
        first = await run_in_threadpool(oldest)
        if last and first is not None and first > last + 1:
            # the client missed more than the retention window: it must reload everything
            yield _frame(first - 1, "reset", utcnow().isoformat(), {"reason": "events expired"})
            last = first - 1
        idle = 0.0
        while not await request.is_disconnected():

            def read(after_id: int = last) -> list[tuple[int, str, str, object]]:
                with makers() as s:
                    return [(r.id, r.type, aware(r.time).isoformat(), r.data) for r in events.read_after(s, after_id)]

            rows = await run_in_threadpool(read)
            for event_id, type_, time, data in rows:
                yield _frame(event_id, type_, time, data)
                last = event_id
            if rows:
                idle = 0.0
                continue
            if idle >= KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                idle = 0.0
            started = asyncio.get_running_loop().time()
            await events.NOTIFIER.wait(POLL_SECONDS)
            idle += asyncio.get_running_loop().time() - started

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

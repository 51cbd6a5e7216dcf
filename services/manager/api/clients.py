"""What clients read from the Manager: full task logs (with a live tail), status, sleep schedules.

Last-rendered previews are not served here: they go up to the Server with the update batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.manager import prefetch
from services.manager.api.deps import ClientDep, ClientTokens, CoreDep, client_identity
from services.manager.errors import ApiError, Forbidden, Invalid, NotFound
from services.manager.model import HeldTask
from services.manager.store import logs
from services.manager.store.check import store_path
from services.manager.store.db import transaction
from services.protocol import VERSION
from services.protocol.common import Id, Int, WorkerIdText
from services.protocol.farm import SleepSchedule
from services.protocol.link import ClientIdentity

router = APIRouter(prefix="/api/v1", tags=["clients"])

FOLLOW_POLL = 0.25
READ_MAX = 16 * 1024 * 1024  # characters per answer: a client pages through a bigger log
FOLLOW_PIECE = 1024 * 1024  # characters per piece of a followed log: a follow from the start of a huge one too
TEXT = "text/plain; charset=utf-8"
FOLLOW_IDLE_END = 2.0  # after the task left this Manager, stop once nothing new came for this long
# a followed log's token is looked at again this often (the token cache's answer, the Server's every 5 s), as the
# Server's event stream does: a revoked or expired token, or a disabled user's, ends the stream
TOKEN_RECHECK_SECONDS = 5.0


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": VERSION}


@router.get("/status")
async def status(_client: ClientDep, core: CoreDep, request: Request) -> dict[str, object]:
    workers: dict[str, int] = {}
    for w in core.workers:
        workers[w.status.value] = workers.get(w.status.value, 0) + 1
    link = request.app.state.link
    return {
        "name": core.config.name,
        "server_up": link.server_up,
        "tasks_held": len(core.tasks),
        "tasks_ready": len(core.ready),
        "tasks_prefetched": prefetch.prefetched(core),
        "workers": workers,
    }


@router.get("/tasks/{task_id}/log", response_class=StreamingResponse)
async def task_log(
    task_id: Id,
    _client: ClientDep,
    core: CoreDep,
    request: Request,
    follow: bool = False,
    tail: Annotated[Int | None, Query(ge=1, le=READ_MAX)] = None,
    before: Annotated[Int | None, Query(ge=0, le=2**62)] = None,
    after: Annotated[Int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[Int, Query(ge=1, le=READ_MAX)] = READ_MAX,
) -> Response:
    """The full log of a task's recent hand-outs as text, a part at a time; `?follow=1` keeps streaming new lines.

    Parts: `tail` (about that many characters of its end), `before` a position (`limit` characters), or `after`
    a position (`limit` characters; no parameter: from the start). Never more than `limit` (≤ READ_MAX) in one
    answer: a whole log of hundreds of MB in one string took the Manager's memory and stalled its event loop.
    The answer's `X-Log-First` and `X-Log-Last` are the positions it covers (the cursors for the next `before` /
    `after`; see store/logs.py), `X-Log-Earlier` whether there is more before; an empty part after a position
    is the end. The reading runs in a thread, on a connection of its own.
    """
    if not logs.has_log(core.conn, task_id) and task_id not in core.tasks:
        raise NotFound(f"this Manager has no log of task {task_id}", "task_id")
    if sum(x is not None for x in (tail, before, after)) > 1 or (follow and (tail is not None or before is not None)):
        raise Invalid("give one of tail, before, or after (with follow or not)", "tail")
    path = store_path(core.config.data_dir)
    if follow:
        tokens: ClientTokens = request.app.state.client_tokens
        header = request.headers.get("authorization", "")
        address = request.client.host if request.client else "unknown"
        still_allowed = partial(_still_allowed, tokens, header, address)
        return StreamingResponse(_follow(path, core.tasks, task_id, after or 0, still_allowed), media_type=TEXT)
    if tail is not None or before is not None:
        read = partial(logs.read_tail, task_id=task_id, max_chars=tail or limit, before=before)
    else:
        read = partial(logs.read_after, task_id=task_id, after=after or 0, max_chars=limit)
    text, first, last, earlier = await asyncio.to_thread(_read, path, task_id, read)
    headers = {"X-Log-First": str(first), "X-Log-Last": str(last), "X-Log-Earlier": str(int(earlier))}
    return Response(text, media_type=TEXT, headers=headers)


def _read(
    path: Path, task_id: int, read: Callable[[sqlite3.Connection], tuple[str, int, int]]
) -> tuple[str, int, int, bool]:
    """A part and whether there is more before it, read in a worker thread on a connection opened for it.

    Not the core's connection: the event loop writes with it meanwhile, and a read sharing it would see (and
    join) the loop's open transaction. One connection per read costs well under a millisecond.
    """
    with contextlib.closing(logs.reader(path)) as conn:
        text, first, last = read(conn)
        return text, first, last, logs.has_before(conn, task_id, first)


async def _still_allowed(tokens: ClientTokens, header: str, address: str) -> bool:
    try:
        await client_identity(tokens, header, address)
    except ApiError:  # revoked, expired, its user disabled; or the Server away too long to vouch for it
        return False
    return True


async def _follow(
    path: Path,
    held: dict[int, HeldTask],
    task_id: int,
    after: int,
    still_allowed: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """New text from position `after` on, FOLLOW_PIECE characters at most at a time, until the task has left
    or the client's token no longer works (looked at every TOKEN_RECHECK_SECONDS)."""
    idle = 0.0
    clock = asyncio.get_running_loop().time
    checked = clock()
    while True:
        if clock() - checked >= TOKEN_RECHECK_SECONDS:
            if not await still_allowed():
                return
            checked = clock()
        read = partial(logs.read_after, task_id=task_id, after=after, max_chars=FOLLOW_PIECE)
        text, _first, last, _earlier = await asyncio.to_thread(_read, path, task_id, read)
        if text:
            after = last
            idle = 0.0
            yield text
            continue
        after = last  # past chunks with nothing left in them
        if task_id not in held:
            idle += FOLLOW_POLL
            if idle >= FOLLOW_IDLE_END:
                return
        await asyncio.sleep(FOLLOW_POLL)


def _wrangler(client: ClientIdentity) -> None:
    if client.role not in ("admin", "wrangler"):
        raise Forbidden("only wranglers and admins may change a worker's sleep schedule", "authorization")


@router.get("/workers/{worker_id}/sleep-schedule")
async def get_sleep_schedule(worker_id: WorkerIdText, _client: ClientDep, core: CoreDep) -> SleepSchedule:
    if core.workers.get(worker_id) is None:
        raise NotFound(f"this Manager has no worker {worker_id!r}", "worker_id")
    return core.sleep.get(worker_id)


@router.put("/workers/{worker_id}/sleep-schedule")
async def put_sleep_schedule(
    worker_id: WorkerIdText, body: SleepSchedule, client: ClientDep, core: CoreDep
) -> SleepSchedule:
    """Set the schedule; the Manager applies it at the worker's next heartbeat."""
    _wrangler(client)
    if core.workers.get(worker_id) is None:
        raise NotFound(f"this Manager has no worker {worker_id!r}", "worker_id")
    with transaction(core.conn):
        core.sleep.set(worker_id, body)
    return body

"""What clients read from the Manager: full task logs (with a live tail), status, sleep schedules.

Last-rendered previews are not served here: they go up to the Server with the update batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.manager import prefetch
from services.manager.api.deps import ClientDep, CoreDep
from services.manager.errors import Forbidden, Invalid, NotFound
from services.manager.model import HeldTask
from services.manager.store import logs
from services.manager.store.db import transaction
from services.protocol import VERSION
from services.protocol.common import Id
from services.protocol.farm import SleepSchedule
from services.protocol.link import ClientIdentity

router = APIRouter(prefix="/api/v1", tags=["clients"])

FOLLOW_POLL = 0.25
READ_MAX = 16 * 1024 * 1024  # characters per answer: a client pages through a bigger log
FOLLOW_IDLE_END = 2.0  # after the task left this Manager, stop once nothing new came for this long


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
    follow: bool = False,
    tail: Annotated[int | None, Query(ge=1, le=READ_MAX)] = None,
    before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=READ_MAX)] = READ_MAX,
) -> Response:
    """The full log of a task's recent hand-outs as text; `?follow=1` keeps streaming new lines.

    For long logs, parts of it: `tail` (about that many characters of its end), `before` a position (`limit`
    characters), `after` a position (with `follow`, what comes after it). The answer's `X-Log-First` and
    `X-Log-Last` are the positions it covers (the cursors for the next `before` / `after`; see store/logs.py),
    `X-Log-Earlier` whether there is more before.
    """
    if not logs.has_log(core.conn, task_id) and task_id not in core.tasks:
        raise NotFound(f"this Manager has no log of task {task_id}", "task_id")
    if sum(x is not None for x in (tail, before)) > 1 or (follow and (tail is not None or before is not None)):
        raise Invalid("give one of tail, before, or after (with follow)", "tail")
    text_type = "text/plain; charset=utf-8"
    if tail is not None or before is not None:
        text, first, last = logs.read_tail(core.conn, task_id, tail or limit, before=before)
        earlier = logs.has_before(core.conn, task_id, first)
        headers = {"X-Log-First": str(first), "X-Log-Last": str(last), "X-Log-Earlier": str(int(earlier))}
        return Response(text, media_type=text_type, headers=headers)
    after_id = max(0, (after >> logs.SHIFT) - 1) if after else 0  # a position: from the chunk it starts
    if not follow:
        text = "".join(c for _i, _h, c in logs.read_chunks(core.conn, task_id, after_id=after_id, limit=1_000_000))
        return Response(text, media_type=text_type)
    return StreamingResponse(_follow(core.conn, core.tasks, task_id, after_id), media_type=text_type)


async def _follow(
    conn: sqlite3.Connection, held: dict[int, HeldTask], task_id: int, last_id: int = 0
) -> AsyncIterator[str]:
    idle = 0.0
    while True:
        chunks = logs.read_chunks(conn, task_id, after_id=last_id)
        if chunks:
            last_id = chunks[-1][0]
            idle = 0.0
            yield "".join(c for _i, _h, c in chunks)
            continue
        if task_id not in held:
            idle += FOLLOW_POLL
            if idle >= FOLLOW_IDLE_END:
                return
        await asyncio.sleep(FOLLOW_POLL)


def _wrangler(client: ClientIdentity) -> None:
    if client.role not in ("admin", "wrangler"):
        raise Forbidden("only wranglers and admins may change a worker's sleep schedule", "authorization")


@router.get("/workers/{worker_id}/sleep-schedule")
async def get_sleep_schedule(worker_id: str, _client: ClientDep, core: CoreDep) -> SleepSchedule:
    if core.workers.get(worker_id) is None:
        raise NotFound(f"this Manager has no worker {worker_id!r}", "worker_id")
    return core.sleep.get(worker_id)


@router.put("/workers/{worker_id}/sleep-schedule")
async def put_sleep_schedule(worker_id: str, body: SleepSchedule, client: ClientDep, core: CoreDep) -> SleepSchedule:
    """Set the schedule; the Manager applies it at the worker's next heartbeat."""
    _wrangler(client)
    if core.workers.get(worker_id) is None:
        raise NotFound(f"this Manager has no worker {worker_id!r}", "worker_id")
    with transaction(core.conn):
        core.sleep.set(worker_id, body)
    return body

"""What clients read from the Manager: full task logs (with a live tail), the last rendered image, status."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from services.manager import prefetch
from services.manager.api.deps import ClientDep, CoreDep
from services.manager.errors import Forbidden, NotFound
from services.manager.model import HeldTask
from services.manager.store import logs
from services.manager.store.db import transaction
from services.protocol import VERSION
from services.protocol.common import Id
from services.protocol.farm import SleepSchedule
from services.protocol.link import ClientIdentity

router = APIRouter(prefix="/api/v1", tags=["clients"])

FOLLOW_POLL = 0.25
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
async def task_log(task_id: Id, _client: ClientDep, core: CoreDep, follow: bool = False) -> Response:
    """The full log of a task's recent hand-outs as text; `?follow=1` keeps streaming new lines."""
    if not logs.has_log(core.conn, task_id) and task_id not in core.tasks:
        raise NotFound(f"this Manager has no log of task {task_id}", "task_id")
    if not follow:
        text = "".join(c for _i, _h, c in logs.read_chunks(core.conn, task_id, limit=1_000_000))
        return Response(text, media_type="text/plain; charset=utf-8")
    return StreamingResponse(_follow(core.conn, core.tasks, task_id), media_type="text/plain; charset=utf-8")


async def _follow(conn: sqlite3.Connection, held: dict[int, HeldTask], task_id: int) -> AsyncIterator[str]:
    last_id = 0
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


@router.get("/jobs/{job_id}/last-rendered")
async def last_rendered(job_id: Id, _client: ClientDep, core: CoreDep) -> Response:
    folder = Path(core.config.data_dir) / "last-rendered"
    found = sorted(folder.glob(f"job-{job_id}.*")) if folder.exists() else []
    if not found:
        raise NotFound(f"no image rendered yet for job {job_id}", "job_id")
    return FileResponse(found[0])


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

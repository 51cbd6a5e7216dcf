"""What clients read from the Manager: full task logs (with a live tail), the last rendered image, status."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from services.manager.api.deps import ClientDep, FarmDep
from services.manager.errors import NotFound
from services.manager.model import HeldTask
from services.manager.store import logs
from services.protocol import VERSION
from services.protocol.common import Id

router = APIRouter(prefix="/api/v1", tags=["clients"])

FOLLOW_POLL = 0.25
FOLLOW_IDLE_END = 2.0  # after the task left this Manager, stop once nothing new came for this long


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": VERSION}


@router.get("/status")
async def status(_client: ClientDep, farm: FarmDep, request: Request) -> dict[str, object]:
    workers: dict[str, int] = {}
    for w in farm.workers.values():
        workers[w.status.value] = workers.get(w.status.value, 0) + 1
    link = request.app.state.link
    return {
        "name": farm.config.name,
        "server_up": link.server_up,
        "tasks_held": len(farm.tasks),
        "tasks_ready": len(farm.ready),
        "workers": workers,
    }


@router.get("/tasks/{task_id}/log", response_class=StreamingResponse)
async def task_log(task_id: Id, _client: ClientDep, farm: FarmDep, follow: bool = False) -> Response:
    """The full log of a task's recent attempts as text; `?follow=1` keeps streaming new lines."""
    if not logs.has_log(farm.conn, task_id) and task_id not in farm.tasks:
        raise NotFound(f"this Manager has no log of task {task_id}", "task_id")
    if not follow:
        text = "".join(c for _i, _h, c in logs.read_chunks(farm.conn, task_id, limit=1_000_000))
        return Response(text, media_type="text/plain; charset=utf-8")
    return StreamingResponse(_follow(farm.conn, farm.tasks, task_id), media_type="text/plain; charset=utf-8")


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
async def last_rendered(job_id: Id, _client: ClientDep, farm: FarmDep) -> Response:
    folder = Path(farm.config.data_dir) / "last-rendered"
    found = sorted(folder.glob(f"job-{job_id}.*")) if folder.exists() else []
    if not found:
        raise NotFound(f"no image rendered yet for job {job_id}", "job_id")
    return FileResponse(found[0])

"""Routes for a wrangler's work on one worker: edit its tags, forget it, read its utilisation history.

(Listing workers and asking one to sleep, wake, restart or shut down are in farm.py.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from services.protocol.common import Int, QueryTime, utcnow
from services.protocol.farm import Worker
from services.protocol.workers import HISTORY_LIMIT_MAX, UtilisationHistory, WorkerTagsBody
from services.server.api.deps import ConfigDep, ReadSessionDep, SessionDep, UserDep, WranglerDep
from services.server.db.tables import WorkerRow
from services.server.store import worker_admin, worker_history
from services.server.store.convert import worker_to_wire
from services.server.store.errors import NotFound

router = APIRouter(tags=["workers"])

WorkerId = Annotated[str, Path(min_length=1, max_length=64)]


@router.put("/workers/{worker_id}/tags")
def set_worker_tags(worker_id: WorkerId, body: WorkerTagsBody, session: SessionDep, _: WranglerDep) -> Worker:
    """Replace the tags the farm uses for this worker (its Manager keeps them across the worker's restarts)."""
    worker = worker_admin.set_tags(session, worker_id, body.tags)
    session.commit()
    return worker_to_wire(worker)


@router.delete("/workers/{worker_id}", status_code=204)
def forget_worker(worker_id: WorkerId, session: SessionDep, _: WranglerDep) -> Response:
    """Forget an offline worker (409 while it is not offline); its Manager forgets it with its next batch."""
    worker_admin.forget(session, worker_id)
    session.commit()
    return Response(status_code=204)


@router.get("/workers/{worker_id}/utilisation")
def worker_utilisation(
    worker_id: WorkerId,
    session: ReadSessionDep,
    _: UserDep,
    cfg: ConfigDep,
    since: Annotated[QueryTime | None, Query(description="oldest sample wanted; default: a day ago")] = None,
    limit: Annotated[Int, Query(ge=1, le=HISTORY_LIMIT_MAX)] = 3000,
) -> UtilisationHistory:
    """The worker's CPU, memory and GPU samples since `since` (at most `limit`, the newest), oldest first."""
    if session.get(WorkerRow, worker_id) is None:
        raise NotFound(f"no worker with id {worker_id!r}", field="id")
    start = worker_history.as_utc(since) if since is not None else utcnow() - timedelta(seconds=cfg.history_seconds)
    if start is None:  # a time no UTC clock reaches (year 1 ahead of UTC): everything kept is after it
        start = utcnow() - timedelta(seconds=cfg.history_seconds)
    return worker_history.history(session, worker_id, start, limit, cfg.utilisation_sample_seconds)

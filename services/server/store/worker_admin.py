"""A wrangler's changes to workers: status requests, edited tags, forgetting a worker that is gone.

Each change waits at the Server until the worker's Manager confirms it, and rides on the answers to the
Manager's update batches meanwhile (calls go bottom-up only):
- a status request is numbered (`status_request_id`); the Manager reports the number of the request it
  holds, and a report with that number and no status requested any more means the worker did it;
- edited tags stay in `tags_requested` until a report carries them (older reports do not undo the edit);
- a forgotten worker's row goes at once; a note in `forgotten_workers` keeps its Manager's reports from
  bringing it back and tells the Manager to forget it too (the note is pruned after a day).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.link import WorkerInstruction, WorkerReport, WorkerTags
from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.server.db.tables import ForgottenWorkerRow, ManagerRow, WorkerRow
from services.server.store import events
from services.server.store.convert import worker_to_wire
from services.server.store.errors import Conflict, NotFound
from services.server.store.worker_history import forget_samples

_LEAVING = (WorkerStatusRequest.SHUTDOWN, WorkerStatusRequest.RESTART)


def _worker(session: Session, worker_id: str) -> WorkerRow:
    worker = session.get(WorkerRow, worker_id)
    if worker is None:
        raise NotFound(f"no worker with id {worker_id!r}", field="id")
    return worker


def _published(session: Session, worker: WorkerRow) -> WorkerRow:
    session.flush()
    events.publish(session, "worker-updated", worker_to_wire(worker).model_dump(mode="json"))
    return worker


def request_status(session: Session, worker_id: str, status: WorkerStatusRequest, lazy: bool) -> WorkerRow:
    worker = _worker(session, worker_id)
    if status in _LEAVING and worker.status == WorkerStatus.OFFLINE:
        raise Conflict(f"worker {worker.name} is offline: there is nothing to {status.value}", field="status")
    worker.status_requested = status
    worker.status_request_lazy = lazy
    worker.status_request_id = (worker.status_request_id or 0) + 1
    return _published(session, worker)


def set_tags(session: Session, worker_id: str, tags: list[str]) -> WorkerRow:
    worker = _worker(session, worker_id)
    worker.tags = list(tags)
    worker.tags_requested = list(tags)
    return _published(session, worker)


def forget(session: Session, worker_id: str) -> None:
    worker = _worker(session, worker_id)
    if worker.status != WorkerStatus.OFFLINE:
        raise Conflict(
            f"worker {worker.name} is {worker.status}: only an offline worker can be forgotten "
            "(shut it down first, or wait until its Manager reports it gone)",
            field="id",
        )
    if session.get(ForgottenWorkerRow, worker_id) is None:
        session.add(ForgottenWorkerRow(worker_id=worker_id, manager_id=worker.manager_id, time=utcnow()))
    forget_samples(session, worker_id)
    session.delete(worker)
    events.publish(session, "worker-deleted", {"id": worker_id})


# ---- the Manager link (store/link.py) ---------------------------------------------------------------------


def forgotten_ids(session: Session, manager: ManagerRow) -> list[str]:
    return list(
        session.scalars(select(ForgottenWorkerRow.worker_id).where(ForgottenWorkerRow.manager_id == manager.id))
    )


def reconcile(row: WorkerRow, report: WorkerReport) -> bool:
    """Apply what the report confirms of the wrangler's changes; True when the row changed."""
    changed = False
    if row.tags_requested is not None:
        if sorted(report.tags) == sorted(row.tags_requested):
            row.tags_requested = None  # the Manager has the edit
        else:
            row.tags = list(row.tags_requested)  # a report from before the edit reached the Manager
    if (
        row.status_requested is not None
        and report.request_id
        and report.request_id == row.status_request_id
        and report.status_requested is None
    ):
        row.status_requested = None  # the Manager finished this very request (shut down, restarted, ...)
        changed = True
    return changed


def instructions(session: Session, manager: ManagerRow) -> tuple[list[WorkerInstruction], list[WorkerTags]]:
    """The pending status requests and tag edits of this Manager's workers, for the answer to its batch."""
    requests: list[WorkerInstruction] = []
    tags: list[WorkerTags] = []
    for w in session.scalars(
        select(WorkerRow).where(
            WorkerRow.manager_id == manager.id,
            (WorkerRow.status_requested.is_not(None)) | (WorkerRow.tags_requested.is_not(None)),
        )
    ):
        if w.status_requested is not None:
            requests.append(
                WorkerInstruction(
                    worker_id=w.id,
                    status=WorkerStatusRequest(w.status_requested),
                    lazy=w.status_request_lazy,
                    request_id=w.status_request_id or 0,
                )
            )
        if w.tags_requested is not None:
            tags.append(WorkerTags(worker_id=w.id, tags=list(w.tags_requested)))
    return requests, tags

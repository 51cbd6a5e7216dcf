"""Routes for tasks: read one, requeue or cancel it, or many at once."""

from __future__ import annotations

from contextlib import AbstractContextManager

from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.common import Id
from services.protocol.jobs import BulkItemResult, BulkResult, BulkTaskRequest, Task, TaskActionRequest
from services.server.api.deps import ConfigDep, DispatcherDep, ReadSessionDep, SessionDep, UserDep
from services.server.db.tables import JobRow, TaskDependencyRow, TaskRow
from services.server.store import jobs as job_store
from services.server.store import task_bulk
from services.server.store import tasks as store
from services.server.store.convert import task_to_wire
from services.server.store.errors import NotFound
from services.server.store.link import handing_off

router = APIRouter(prefix="/tasks", tags=["tasks"])


def _task(session: Session, task_id: int) -> TaskRow:
    task = session.get(TaskRow, task_id)
    if task is None:
        raise NotFound(f"no task with id {task_id}", field="id")
    return task


def _wire(session: Session, task: TaskRow) -> Task:
    deps = session.scalars(select(TaskDependencyRow.depends_on_id).where(TaskDependencyRow.task_id == task.id)).all()
    return task_to_wire(task, list(deps))


@router.post("/bulk")
def bulk(
    req: BulkTaskRequest, session: SessionDep, user: UserDep, dispatcher: DispatcherDep, cfg: ConfigDep
) -> BulkResult:
    """Each task as `POST /tasks/{id}/status` would act on it, in transactions of a bounded size (store/task_bulk.py);
    one task's refusal stops no other and undoes none done."""

    def may_run_again(job: JobRow) -> None:
        cfg.policy.check_run_again(job.type, job.settings, user.role)

    def finish(session: Session, jobs: list[JobRow]) -> AbstractContextManager[object]:
        return handing_off(session, dispatcher, jobs, cfg.lease_seconds)  # requeued tasks to waiting Managers

    ids = list(dict.fromkeys(req.ids))  # a repeated id is acted on once and answered once
    refused = task_bulk.act(session, ids, req.action, user, req.reason, may_run_again, finish)
    return BulkResult(
        results=[
            BulkItemResult(id=i, ok=False, error=refused[i]) if i in refused else BulkItemResult(id=i, ok=True)
            for i in ids
        ]
    )


@router.api_route("/bulk", methods=["GET"], include_in_schema=False)
def bulk_is_only_posted() -> None:
    """`/tasks/bulk` is no task: a GET of it is a 405 naming `POST`, not a 422 for the id `bulk`."""
    raise HTTPException(405)


@router.get("/{task_id}")
def get_task(task_id: Id, session: ReadSessionDep, _: UserDep) -> Task:
    return _wire(session, _task(session, task_id))


@router.post("/{task_id}/status")
def change_task_status(
    task_id: Id,
    req: TaskActionRequest,
    session: SessionDep,
    user: UserDep,
    dispatcher: DispatcherDep,
    cfg: ConfigDep,
) -> Task:
    task = _task(session, task_id)
    job = job_store.get(session, task.job_id, for_update=True)
    job_store.check_may_manage(job, user)
    if req.action == "requeue":
        cfg.policy.check_run_again(job.type, job.settings, user.role)
        store.requeue_task(session, task, job, actor=user.name, reason=req.reason)
    else:
        store.cancel_task(session, task, job, actor=user.name, reason=req.reason)
    # a requeued task is runnable now: a Manager waiting for work gets it in this transaction, like a new job's
    with handing_off(session, dispatcher, [job], cfg.lease_seconds):
        session.commit()
    return _wire(session, task)

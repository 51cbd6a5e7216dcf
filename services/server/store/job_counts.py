"""The job's task counters read under the job row's lock before a status change moves them (PostgreSQL).

`set_task_status` keeps a job's denormalised counters by adding and subtracting in Python. Two transactions that
loaded the same job row (two Servers on one database, or two request threads of one) would each add to the value
they read, and the later commit would undo the earlier one's change: with two Servers, 3,000 completed tasks
left a job at `tasks_completed` 1,950, never completing it. So before a transaction's first change to a job's
counters, the row is locked (`FOR UPDATE`, held to the commit) and the counters re-read from it. SQLite has one
writer at a time, so the values it loaded are already the latest.

The task's own status is read again too, under its row's lock, once its job's is held: a wrangler's cancel
through another Server, committed while a Manager's batch waited for the job, had moved the task the batch
had loaded as assigned; the batch counted it out of "running" and into "completed" (the cancel had already
counted it as canceled) and wrote the task completed over its cancel.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from services.protocol.states import TaskStatus
from services.server.db.tables import JobRow, TaskRow
from services.server.store.errors import Conflict

COUNTERS = ("tasks_total", "tasks_completed", "tasks_failed", "tasks_canceled", "tasks_active")
_LOCKED = "tablao_locked_job_counters"
_LOCKED_TASKS = "tablao_locked_tasks"
_CHUNK = 500


def _locked_in_this_transaction(session: Session, key: str) -> set[int]:
    """The ids this transaction has locked so far, of one kind (forgotten when another transaction begins)."""
    transaction = session.get_transaction()
    held: tuple[object, set[int]] | None = session.info.get(key)
    if held is None or held[0] is not transaction:
        held = session.info[key] = (transaction, set())
    return held[1]


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class JobGone(Conflict):
    """The job was deleted by a transaction that committed while this one waited for its row."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was deleted meanwhile", field="id")
        self.job_id = job_id


def lock_counters(session: Session, job: JobRow, *, skip_locked: bool = False) -> bool:
    """Lock the job's row (once per transaction) and load its current counters into `job`; JobGone (a 409)
    when a delete of the job committed while this waited for its row. `skip_locked`: rather than wait for
    another transaction's lock, return False (the job's row is not locked, or the job is gone)."""
    if not _postgres(session):
        return True
    held = _locked_in_this_transaction(session, _LOCKED)
    if job.id in held:
        return True
    columns = [getattr(JobRow, name) for name in COUNTERS]
    with session.no_autoflush:  # a flush here would write values computed from what may be stale
        stmt = select(*columns).where(JobRow.id == job.id).with_for_update(skip_locked=skip_locked)
        row = session.execute(stmt).one_or_none()
    if row is None:
        if skip_locked:
            return False
        raise JobGone(job.id)
    state = inspect(job)
    for name, value in zip(COUNTERS, row, strict=True):
        if not state.attrs[name].history.has_changes():  # this transaction's own changes stay
            set_committed_value(job, name, value)
    held.add(job.id)
    return True


def lock_for_status_changes(
    session: Session, tasks: Iterable[TaskRow], also: Iterable[TaskRow] = (), also_jobs: Iterable[int] = ()
) -> set[int]:
    """Before this transaction changes anything of these tasks: their jobs' counters locked (in id order) and
    the tasks read again under their rows' locks, a query per 500 (PostgreSQL). What a batch of a Manager's
    updates does first, so that it reads each task's status once it may act on it. `also`: tasks it will write
    without changing their status (progress), their rows locked as the write would; `also_jobs`: the jobs of
    other tasks it will write so (lease renewals). Returns the ids of the jobs deleted while it read or waited
    (their tasks are gone: the caller must not write them).

    Every job's row is locked before any task row, as a wrangler's job action (pause, cancel, requeue) locks
    the job and then writes its tasks: a batch that wrote a task first and then waited for its job, while the
    action held the job and waited for that task, deadlocked (40P01, a 503 to both)."""
    if not _postgres(session):
        return set()
    tasks = list(tasks)
    also = list(also)
    shared = ({t.job_id for t in also} | set(also_jobs)) - {t.job_id for t in tasks}
    gone = _lock_counters_of(session, tasks, shared)
    tasks = [t for t in tasks if t.job_id not in gone]
    held = _locked_in_this_transaction(session, _LOCKED_TASKS)
    ids = sorted({t.id for t in tasks} - held)
    with session.no_autoflush:
        for i in range(0, len(ids), _CHUNK):
            chosen = select(TaskRow).where(TaskRow.id.in_(ids[i : i + _CHUNK])).order_by(TaskRow.id)
            session.execute(chosen.with_for_update().execution_options(populate_existing=True)).all()
    held.update(ids)
    writing = {t.id: t.job_id for t in also if t.job_id not in gone and t.id not in held}
    ids = sorted(writing)
    with session.no_autoflush:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            # FOR NO KEY UPDATE, the lock the write takes: taken now, a delete committed since the read shows
            found = session.scalars(
                select(TaskRow.id).where(TaskRow.id.in_(chunk)).order_by(TaskRow.id).with_for_update(key_share=True)
            ).all()
            gone.update(writing[task_id] for task_id in set(chunk).difference(found))
    return gone


def _lock_counters_of(session: Session, tasks: list[TaskRow], shared: set[int] | None = None) -> set[int]:
    """The counters of these tasks' jobs locked, and the rows of the jobs `shared` with a lock that only job
    actions' (FOR UPDATE) wait for, all in id order; the ids of the jobs deleted meanwhile."""
    gone: set[int] = set()
    shared = shared or set()
    held = _locked_in_this_transaction(session, _LOCKED)
    for job_id in sorted({t.job_id for t in tasks} | shared):
        if job_id in shared:
            # FOR KEY SHARE: other batches writing the job's tasks or counters go on; a job action waits, and
            # this batch waits for one, before either touches the job's tasks
            if (
                job_id not in held
                and session.scalar(
                    select(JobRow.id).where(JobRow.id == job_id).with_for_update(key_share=True, read=True)
                )
                is None
            ):
                gone.add(job_id)
            continue
        job = session.get(JobRow, job_id)
        try:
            if job is None:
                raise JobGone(job_id)
            lock_counters(session, job)
        except JobGone:
            gone.add(job_id)
    return gone


def read_locked(session: Session, task: TaskRow) -> TaskRow:
    """`task` was read under its row's lock in this transaction (`SELECT … FOR UPDATE`, as claims and the lease
    sweep read theirs): its status is current, and `locked_status` need not read it again. Returns `task`."""
    if _postgres(session):
        _locked_in_this_transaction(session, _LOCKED_TASKS).add(task.id)
    return task


def locked_status(session: Session, task: TaskRow) -> TaskStatus:
    """The task's status as committed, its row locked to this transaction's end (PostgreSQL, with its job's
    counters locked first: `lock_counters`); the loaded one where this transaction locked or changed it already,
    or on SQLite."""
    if not _postgres(session):
        return TaskStatus(task.status)
    held = _locked_in_this_transaction(session, _LOCKED_TASKS)
    if task.id in held or inspect(task).attrs.status.history.has_changes():
        return TaskStatus(task.status)
    with session.no_autoflush:
        status = session.execute(select(TaskRow.status).where(TaskRow.id == task.id).with_for_update()).scalar_one()
    set_committed_value(task, "status", status)
    held.add(task.id)
    return TaskStatus(status)

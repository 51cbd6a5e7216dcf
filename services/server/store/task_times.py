"""Task start and end times, and the job's time figures kept from them as tasks change status.

`note()` runs in `store.tasks.set_task_status` for every single-task change, so the job's mean, longest, running
tasks and first start stay true without reading its other tasks; `recount()` rebuilds them with SQL aggregates
after a change of many tasks at once (a requeue), as `store.tasks.recount` does for the counts.

Times come from the Manager's updates, stamped by the worker's clock where it said (docs/api.md "Time"); they
are kept no later than the Server's now, so a worker clock running ahead cannot make a task end in the future,
and a start no earlier than an hour before the job was submitted: a worker clock at 1970 (a dead CMOS battery) or
a hostile Manager's year 1 made the job's mean task time decades long, and its ETA past the calendar's end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.protocol import timing
from services.protocol.common import utcnow
from services.protocol.states import RUNNABLE_JOB_STATUSES, TaskStatus, WorkerStatus
from services.protocol.tags import required_tags
from services.server.db.tables import JobRow, TaskRow, WorkerRow
from services.server.store.convert import aware

_RUNNABLE = frozenset(s.value for s in RUNNABLE_JOB_STATUSES)
# statuses that end a run that had started
_ENDS_RUN = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SOFT_FAILED, TaskStatus.CANCELED})


def _epoch(t: datetime) -> float:
    return aware(t).timestamp()


SKEW_ALLOWED = timedelta(hours=1)  # how far behind the Server's a worker's clock may be for a start to stand


def _clamp(t: datetime | None, now: datetime) -> datetime:
    return now if t is None else min(aware(t), now)


def _start(t: datetime | None, job: JobRow, now: datetime) -> datetime:
    """A run's start as reported, within its bounds: not in the future, not long before its job existed."""
    return max(_clamp(t, now), aware(job.created) - SKEW_ALLOWED)


def note(
    session: Session,
    task: TaskRow,
    job: JobRow,
    old: TaskStatus,
    new: TaskStatus,
    *,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> None:
    """Keep the task's times and the job's figures true for the change old → new (call before it is made).

    `started` is when the run began (the Manager sends it with `active`, and keeps it when it merges `active`
    into a final update); `ended` is when a final status happened. Missing ones are taken as now.
    """
    now = utcnow()
    if old == TaskStatus.ACTIVE and task.started is not None and (new != old or started is not None):
        job.tasks_running -= 1
        job.running_since_total -= _epoch(task.started)
    if old == TaskStatus.COMPLETED and new != old and task.render_seconds is not None:
        _forget_completed(session, task, job)
    if new == TaskStatus.ACTIVE and (new != old or started is not None):
        task.started = _start(started, job, now)
        task.finished = task.render_seconds = None
        job.tasks_running += 1
        job.running_since_total += _epoch(task.started)
        _note_start(job, task.started)
        return
    if new in _ENDS_RUN and new != old and (started is not None or old == TaskStatus.ACTIVE):
        if started is not None:  # it started and ended between two of the Manager's updates
            task.started = _start(started, job, now)
            _note_start(job, task.started)
        assert task.started is not None
        task.finished = max(_clamp(ended, now), aware(task.started))
        task.render_seconds = (task.finished - aware(task.started)).total_seconds()
        if job.finished is None or aware(job.finished) < task.finished:
            job.finished = task.finished
        if new == TaskStatus.COMPLETED:
            job.tasks_timed += 1
            job.task_seconds_total += task.render_seconds
            job.task_seconds_max = max(job.task_seconds_max, task.render_seconds)
    if new in (TaskStatus.QUEUED, TaskStatus.PAUSED) and new != old:
        task.started = task.finished = task.render_seconds = None  # to run again: its times are to come


def _note_start(job: JobRow, started: datetime) -> None:
    if job.started is None or aware(job.started) > started:
        job.started = started


def _forget_completed(session: Session, task: TaskRow, job: JobRow) -> None:
    """A completed task runs again (requeued by a wrangler): it leaves the job's mean and perhaps its longest."""
    assert task.render_seconds is not None
    job.tasks_timed = max(job.tasks_timed - 1, 0)
    job.task_seconds_total = max(job.task_seconds_total - task.render_seconds, 0.0) if job.tasks_timed else 0.0
    if task.render_seconds >= job.task_seconds_max:
        longest = session.scalar(
            select(func.max(TaskRow.render_seconds)).where(
                TaskRow.job_id == job.id, TaskRow.status == TaskStatus.COMPLETED, TaskRow.id != task.id
            )
        )
        job.task_seconds_max = float(longest or 0.0)


def recount(session: Session, job: JobRow) -> None:
    """Rebuild the job's time figures from its tasks: aggregates in the database, no task read into Python
    but the running ones (no more than there are workers)."""
    timed, total, longest = session.execute(
        select(
            func.count(TaskRow.render_seconds), func.sum(TaskRow.render_seconds), func.max(TaskRow.render_seconds)
        ).where(TaskRow.job_id == job.id, TaskRow.status == TaskStatus.COMPLETED)
    ).one()
    first, last = session.execute(
        select(func.min(TaskRow.started), func.max(TaskRow.finished)).where(TaskRow.job_id == job.id)
    ).one()
    starts = session.scalars(
        select(TaskRow.started).where(
            TaskRow.job_id == job.id, TaskRow.status == TaskStatus.ACTIVE, TaskRow.started.is_not(None)
        )
    ).all()
    job.tasks_timed = int(timed or 0)
    job.task_seconds_total = float(total or 0.0)
    job.task_seconds_max = float(longest or 0.0)
    job.started = aware(first) if first is not None else None
    job.finished = aware(last) if last is not None else None
    job.tasks_running = len(starts)
    job.running_since_total = sum(_epoch(s) for s in starts if s is not None)


class _AwakeWorker(NamedTuple):
    """The columns of an awake, available worker that `timing.fits` reads (no wire model per worker)."""

    manager_id: int | None
    tags: list[str]
    task_types: list[str]
    status: WorkerStatus = WorkerStatus.AWAKE
    unavailable: None = None


def worker_counts(session: Session) -> Callable[[JobRow], int | None]:
    """How many workers can run a job, for its ETA: one query of the awake workers per answer, whatever the
    number of jobs in it, and jobs asking the same of a worker (Manager, tags, task types) counted once.
    None for jobs that are not running (they have no ETA)."""
    awake: list[_AwakeWorker] | None = None
    counted: dict[tuple[int | None, tuple[str, ...], tuple[str, ...]], int] = {}

    def count(job: JobRow) -> int | None:
        nonlocal awake
        if job.status not in _RUNNABLE:
            return None
        key = (job.manager_id, tuple(sorted(required_tags(job.tags))), tuple(job.task_types or []))
        if key not in counted:
            if awake is None:
                rows = session.execute(
                    select(WorkerRow.manager_id, WorkerRow.tags, WorkerRow.task_types).where(
                        WorkerRow.status == WorkerStatus.AWAKE.value, WorkerRow.unavailable.is_(None)
                    )
                )
                awake = [_AwakeWorker(m, list(t or []), list(tt or [])) for m, t, tt in rows]
            counted[key] = sum(1 for w in awake if timing.fits(key[0], key[1], key[2], w))
        return counted[key]

    return count

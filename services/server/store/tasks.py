"""Task status changes, the one place they happen, and the job bookkeeping that follows them.

`set_task_status` is used for single tasks (a Manager's update, a wrangler's requeue); whole-job actions use
the bulk helpers at the bottom, which change many rows with one statement and then recount the job. Dependents
of completed tasks are adjusted at flush and commit by the hooks `install()` puts on a session factory.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import plural, utcnow
from services.protocol.jobs import OnTaskFailure
from services.protocol.states import JobStatus, TaskStatus
from services.server.db.tables import (
    JobLogRow,
    JobRow,
    ManagerExclusionRow,
    ManagerRow,
    PendingInstructionRow,
    TaskDependencyRow,
    TaskRow,
)
from services.server.states import jobs as job_states
from services.server.states.tasks import CANCELABLE, HELD, REQUEUEABLE, check_transition
from services.server.store import events, failures, task_times, webhooks
from services.server.store.convert import task_summary
from services.server.store.job_counts import lock_counters, locked_status

_SHIFTS = "tablao_dependency_shifts"

_COUNTER_OF = {
    TaskStatus.COMPLETED: "tasks_completed",
    TaskStatus.FAILED: "tasks_failed",
    TaskStatus.CANCELED: "tasks_canceled",
    TaskStatus.ASSIGNED: "tasks_active",
    TaskStatus.ACTIVE: "tasks_active",
    TaskStatus.SOFT_FAILED: "tasks_active",
}


def set_task_status(
    session: Session,
    task: TaskRow,
    new: TaskStatus,
    *,
    actor: str,
    activity: str | None = None,
    job: JobRow | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
    dependents: bool = True,
) -> None:
    """Move one task to `new` and keep everything that depends on it true.

    Raises `IllegalTaskTransition` for a change the task state machine refuses. Keeps the job's counters and
    time figures (`started`, `ended`: when its run began and ended, see store/task_times.py), the dependents'
    `deps_pending`, the job's status (which follows its tasks) and publishes events. `dependents`: False when the
    caller knows that no task depends on this one (a failed or canceled one has no dependents to cancel).
    """
    if activity is not None:
        task.activity = activity
    old = TaskStatus(task.status)
    if old != new:
        job = job or session.get_one(JobRow, task.job_id)
        lock_counters(session, job)  # another transaction may have moved them since `job` was loaded
        old = locked_status(session, task)  # and the task with them (job_counts.py)
    if old == new:
        task.updated = utcnow()
        events.publish(session, "task-updated", task_summary(task).model_dump(mode="json"))
        return
    check_transition(old, new)
    job = job or session.get_one(JobRow, task.job_id)
    task_times.note(session, task, job, old, new, started=started, ended=ended)
    task.status = new
    task.updated = utcnow()
    if (field := _COUNTER_OF.get(old)) is not None:
        setattr(job, field, getattr(job, field) - 1)
    if (field := _COUNTER_OF.get(new)) is not None:
        setattr(job, field, getattr(job, field) + 1)
    if new == TaskStatus.COMPLETED:
        _queue_shift(session, task.id, -1)
        task.steps_done = task.steps_total
    elif old == TaskStatus.COMPLETED:
        _queue_shift(session, task.id, +1)
    if new not in HELD:
        task.lease_expires = None
    if new in (TaskStatus.QUEUED, TaskStatus.PAUSED):
        task.manager_id = None
        task.worker_id = None
        task.worker_name = None
    if new == TaskStatus.QUEUED:
        task.steps_done = 0
    events.publish(session, "task-updated", task_summary(task).model_dump(mode="json"))
    if new in (TaskStatus.FAILED, TaskStatus.CANCELED) and dependents:
        cancel_dependents(session, job, [task.id], actor=actor)
    follow_job(session, job, actor=actor)


def _queue_shift(session: Session, task_id: int, delta: int) -> None:
    # A batch of updates completes many tasks; their dependents are adjusted with one statement at the next
    # flush or commit instead of one statement per task (a fifth of the Server's time under load).
    shifts: dict[int, int] = session.info.setdefault(_SHIFTS, {})
    shifts[task_id] = shifts.get(task_id, 0) + delta


def install(sessions: sessionmaker[Session]) -> None:
    """Apply the queued dependency shifts of the factory's sessions at each flush and before commit."""
    event.listen(sessions, "before_flush", _shift_before_flush)
    event.listen(sessions, "before_commit", apply_dependency_shifts)
    event.listen(sessions, "after_rollback", _forget_shifts)


def _shift_before_flush(session: Session, _context: object, _instances: object) -> None:
    apply_dependency_shifts(session)


def _forget_shifts(session: Session) -> None:
    session.info.pop(_SHIFTS, None)


def apply_dependency_shifts(session: Session) -> None:
    """Move `deps_pending` of the dependents of tasks that completed (-1) or were un-completed (+1)."""
    shifts: dict[int, int] = session.info.pop(_SHIFTS, {})
    by_delta: dict[int, list[int]] = {}
    for task_id, delta in shifts.items():
        if delta:
            by_delta.setdefault(delta, []).append(task_id)
    for delta, ids in by_delta.items():
        for start in range(0, len(ids), 500):
            _shift_dependents(session, ids[start : start + 500], delta)


def _shift_dependents(session: Session, task_ids: list[int], delta: int) -> None:
    # a dependent may wait on several of these tasks: it moves by delta once per task it waits on
    hits = (
        select(func.count())
        .select_from(TaskDependencyRow)
        .where(TaskDependencyRow.task_id == TaskRow.id, TaskDependencyRow.depends_on_id.in_(task_ids))
        .scalar_subquery()
    )
    dependents = select(TaskDependencyRow.task_id).where(TaskDependencyRow.depends_on_id.in_(task_ids))
    session.execute(
        update(TaskRow)
        .where(TaskRow.id.in_(dependents))
        .values(deps_pending=TaskRow.deps_pending + delta * hits)
        .execution_options(synchronize_session=False)
    )


def cancel_dependents(session: Session, job: JobRow, task_ids: list[int], *, actor: str) -> None:
    """Tasks that wait on a failed or canceled task can never run: cancel them, transitively.

    Found in one recursive query, through waiting (queued or paused) tasks only, as a level at a time would: a
    chain of 2,400 OpenJD steps took a query per level, 2 s with the write lock held."""
    waiting = [TaskStatus.QUEUED, TaskStatus.PAUSED]
    dep = TaskDependencyRow
    first = (
        select(dep.task_id.label("id"))
        .join(TaskRow, TaskRow.id == dep.task_id)
        .where(dep.depends_on_id.in_(task_ids), TaskRow.status.in_(waiting))
    )
    reach = first.cte("reach", recursive=True)
    reach = reach.union(
        select(dep.task_id)
        .join(reach, dep.depends_on_id == reach.c.id)
        .join(TaskRow, TaskRow.id == dep.task_id)
        .where(TaskRow.status.in_(waiting))
    )
    rows = session.scalars(select(TaskRow).where(TaskRow.id.in_(select(reach.c.id))).order_by(TaskRow.id)).all()
    for row in rows:
        row.status = TaskStatus.CANCELED
        row.activity = "canceled: a task it depends on did not complete"
        row.updated = utcnow()
        job.tasks_canceled += 1
        events.publish(session, "task-updated", task_summary(row).model_dump(mode="json"))


def log_job(session: Session, job: JobRow, actor: str, message: str) -> None:
    session.add(JobLogRow(job_id=job.id, time=utcnow(), user=actor, message=message))


def set_job_status(session: Session, job: JobRow, new: JobStatus, *, actor: str, reason: str = "") -> None:
    old = JobStatus(job.status)
    if old == new:
        return
    if not job_states.can_transition(old, new):
        raise job_states.IllegalJobTransition(old, new)
    job.status = new
    job.updated = utcnow()
    message = f"status {old} → {new}" + (f": {reason}" if reason else "")
    log_job(session, job, actor, message)
    events.mark_job_dirty(session, job)
    if new in failures.BLOCKING and old not in failures.BLOCKING:
        failures.tell_dependents(session, job)  # jobs waiting for this one would wait for ever
    webhooks.job_finished(session, job, new)  # queues the farm's webhook calls in this same transaction


def counts_of(job: JobRow) -> job_states.TaskCounts:
    return job_states.TaskCounts(
        total=job.tasks_total,
        completed=job.tasks_completed,
        failed=job.tasks_failed,
        canceled=job.tasks_canceled,
        running=job.tasks_active,
    )


def follow_job(session: Session, job: JobRow, *, actor: str) -> None:
    """Let the job's status follow its tasks; a job that fails cancels what is left of it."""
    old = JobStatus(job.status)
    new = job_states.follow_tasks(
        old, counts_of(job), fail_on_task_failure=job.on_task_failure == OnTaskFailure.FAIL_JOB
    )
    job.updated = utcnow()
    events.mark_job_dirty(session, job)
    if new == old:
        if old in _STOPPING and job.tasks_active:  # the count of tasks still running goes down as they stop
            job.activity = still_running(old, job.tasks_active)
        return
    reason = {
        JobStatus.FAILED: "a task failed",
        JobStatus.COMPLETED: "all tasks completed",
    }.get(new, "")
    set_job_status(session, job, new, actor=actor, reason=reason)
    if new == JobStatus.FAILED:
        job.activity = "failed: a task failed"
        stop_unfinished(session, job, to=TaskStatus.CANCELED, actor=actor)
    elif new == JobStatus.COMPLETED:
        job.activity = "completed"
    elif old in _STOPPING and new in (JobStatus.CANCELED, JobStatus.PAUSED):
        job.activity = f"{new.value}: no task still running"


# a pause or cancel waiting for running tasks to stop: what the job's activity says meanwhile
_STOPPING = {JobStatus.CANCEL_REQUESTED: "canceling", JobStatus.PAUSE_REQUESTED: "pausing"}


def still_running(status: JobStatus, running: int) -> str:
    """The activity of a job paused or canceled whose running tasks have not all stopped yet."""
    return f"{_STOPPING[status]}: {plural(running, 'task')} still running"


# ---- bulk changes of a whole job ---------------------------------------------------------------


def instruct(session: Session, manager_id: int, kind: str, task_ids: Iterable[int]) -> None:
    now = utcnow()
    rows = [PendingInstructionRow(manager_id=manager_id, kind=kind, task_id=tid, created=now) for tid in task_ids]
    if rows:
        session.add_all(rows)
        events.wake_at_commit(session)  # the Manager's waiting claim ends so that it collects them at once


def give_workers_another_chance(session: Session, job: JobRow, task_type: str | None = None) -> None:
    """A wrangler requeued (tasks of) this job, usually after a fix: every Manager forgets which workers failed
    it, and Managers that had none left that may run it are offered its tasks again."""
    for manager_id in session.scalars(select(ManagerRow.id)):
        instruct(session, manager_id, "reset-blocklist", [job.id])
    gone = delete(ManagerExclusionRow).where(ManagerExclusionRow.job_id == job.id)
    if task_type is not None:
        gone = gone.where(ManagerExclusionRow.task_type == task_type)
    session.execute(gone)
    failures.forget_job(session, job.id)


def stop_unfinished(session: Session, job: JobRow, *, to: TaskStatus, actor: str) -> int:
    """Pause or cancel every task of the job that has not started; ask Managers to drop what they hold.

    Tasks already running (`active`) keep running and are asked to stop when `to` is canceled; their
    Manager's report then settles them. Returns the number of tasks still running.
    """
    # A batch that fails the job writes its other tasks' changes without autoflush (store/link.py): the bulk
    # statements and the recount below must see them, or they cancel and count tasks the batch completed.
    session.flush()
    held = session.execute(
        select(TaskRow.id, TaskRow.manager_id, TaskRow.status).where(
            TaskRow.job_id == job.id, TaskRow.status.in_(list(HELD))
        )
    ).all()
    by_manager: dict[int, list[int]] = {}
    for tid, mid, status in held:
        if mid is not None and (status != TaskStatus.ACTIVE or to == TaskStatus.CANCELED):
            by_manager.setdefault(mid, []).append(tid)
    for mid, tids in by_manager.items():
        instruct(session, mid, "cancel-task", tids)
    now = utcnow()
    session.execute(
        update(TaskRow)
        .where(
            TaskRow.job_id == job.id,
            TaskRow.status.in_([TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.SOFT_FAILED, TaskStatus.PAUSED]),
        )
        .values(
            status=to,
            # A paused or canceled task names the Manager it was taken from: a run of it that completed before
            # that Manager heard of the pause or cancel is kept (store/link.py, finished_after_stop)
            worker_id=None,
            worker_name=None,
            lease_expires=None,
            updated=now,
            activity="paused" if to == TaskStatus.PAUSED else "canceled",
        )
        # the task rows this session holds take the new values too: a batch that goes on to report another of
        # the job's tasks must see it canceled, not as it first loaded it (its flush would undo this update)
        .execution_options(synchronize_session="evaluate")
    )
    recount(session, job)
    events.publish(session, "job-tasks-changed", {"job_id": job.id})
    return job.tasks_active


def requeue_where(
    session: Session, job: JobRow, statuses: list[TaskStatus], *, actor: str, resume: bool = False
) -> int:
    """Requeue the job's tasks in `statuses`, resetting their failure counts; returns how many.

    A resume keeps the Manager a pause took each task from until a claim hands it out again: a run of it that
    completed before that Manager heard of the pause may still be reported (store/link.py, finished_after_stop).
    """
    ids = session.scalars(select(TaskRow.id).where(TaskRow.job_id == job.id, TaskRow.status.in_(statuses))).all()
    if not ids:
        return 0
    # A pause's or cancel's order to drop these tasks, not yet handed to their Managers, is void: delivered after a
    # claim of the same task, it dropped the new hand-out, which then waited for its lease to run out (a minute). A
    # Manager that never hears it finds its old hand-out stale at its next report, or replaced by the new one.
    for i in range(0, len(ids), 500):
        session.execute(
            delete(PendingInstructionRow).where(
                PendingInstructionRow.kind == "cancel-task", PendingInstructionRow.task_id.in_(ids[i : i + 500])
            )
        )
    now = utcnow()
    session.execute(
        update(TaskRow)
        .where(TaskRow.job_id == job.id, TaskRow.status.in_(statuses))
        .values(
            status=TaskStatus.QUEUED,
            failure_count=0,
            **({} if resume else {"manager_id": None}),
            worker_id=None,
            worker_name=None,
            lease_expires=None,
            steps_done=0,
            activity="",
            updated=now,
            started=None,
            finished=None,
            render_seconds=None,
        )
        .execution_options(synchronize_session="evaluate")  # as in stop_unfinished
    )
    if TaskStatus.COMPLETED in statuses:
        recompute_deps_pending(session, job.id)
    recount(session, job)
    events.publish(session, "job-tasks-changed", {"job_id": job.id})
    return len(ids)


def recompute_deps_pending(session: Session, job_id: int) -> None:
    dep = TaskDependencyRow.__table__.alias("d")
    parent = TaskRow.__table__.alias("p")
    pending = (
        select(func.count())
        .select_from(dep.join(parent, parent.c.id == dep.c.depends_on_id))
        .where(dep.c.task_id == TaskRow.id, parent.c.status != TaskStatus.COMPLETED)
        .scalar_subquery()
    )
    session.execute(
        update(TaskRow)
        .where(TaskRow.job_id == job_id)
        .values(deps_pending=pending)
        .execution_options(synchronize_session=False)
    )


def recount(session: Session, job: JobRow) -> None:
    rows = session.execute(
        select(TaskRow.status, func.count()).where(TaskRow.job_id == job.id).group_by(TaskRow.status)
    ).all()
    counts = {TaskStatus(status): n for status, n in rows}
    job.tasks_total = sum(counts.values())
    job.tasks_completed = counts.get(TaskStatus.COMPLETED, 0)
    job.tasks_failed = counts.get(TaskStatus.FAILED, 0)
    job.tasks_canceled = counts.get(TaskStatus.CANCELED, 0)
    job.tasks_active = sum(counts.get(s, 0) for s in HELD)
    task_times.recount(session, job)
    job.updated = utcnow()
    events.mark_job_dirty(session, job)


# ---- a wrangler's action on one task -----------------------------------------------------------


def requeue_refusal(task: TaskRow, job: JobRow) -> str | None:
    """Why `requeue_task` would refuse this task now; None when it would requeue it."""
    old = TaskStatus(task.status)
    if old not in REQUEUEABLE:
        return f"cannot requeue a task that is {old} (only from: {_names(REQUEUEABLE)})"
    still_failed = job.tasks_failed - (old == TaskStatus.FAILED)
    if job.on_task_failure == OnTaskFailure.FAIL_JOB and still_failed > 0:
        # the job would fail again at once for the failed task left, canceling this one: a 200 that did nothing
        return (
            f"job {job.id} fails at any failed task, and {plural(still_failed, 'other task')} of it failed: "
            "requeue the failed tasks (the job's requeue-failed), or the whole job"
        )
    if old == TaskStatus.PAUSED and JobStatus(job.status) in (JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED):
        return "the job is paused: resume the job to run its tasks"
    return None


def requeue_task(
    session: Session, task: TaskRow, job: JobRow, *, actor: str, reason: str = "", another_chance: bool = True
) -> None:
    """Requeue one task; `requeue_refusal` is its only refusal, raised before anything is written.

    `another_chance`: False when this transaction gave the workers another chance at this job's tasks of this type
    already (store/task_bulk.py): doing it again would only queue the same instructions again."""
    if (why := requeue_refusal(task, job)) is not None:
        raise IllegalTaskAction(why)
    old = TaskStatus(task.status)
    if old == TaskStatus.SOFT_FAILED and task.manager_id is not None:
        instruct(session, task.manager_id, "cancel-task", [task.id])
    if JobStatus(job.status) in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
        set_job_status(session, job, JobStatus.REQUEUEING, actor=actor, reason=f"task {task.name} requeued")
        set_job_status(session, job, JobStatus.QUEUED, actor=actor)
    task.failure_count = 0
    if another_chance:
        give_workers_another_chance(session, job, task.type)
    set_task_status(session, task, TaskStatus.QUEUED, actor=actor, activity=f"requeued by {actor}", job=job)
    log_job(session, job, actor, f"task {task.name} requeued" + (f": {reason}" if reason else ""))


def cancel_refusal(task: TaskRow) -> str | None:
    """Why `cancel_task` would refuse this task now; None when it would cancel it."""
    old = TaskStatus(task.status)
    if old not in CANCELABLE:
        return f"cannot cancel a task that is {old} (only from: {_names(CANCELABLE)})"
    return None


def cancel_task(
    session: Session, task: TaskRow, job: JobRow, *, actor: str, reason: str = "", dependents: bool = True
) -> None:
    """Cancel one task (its Manager is asked to stop it if it runs); `cancel_refusal` is its only refusal, raised
    before anything is written. `dependents`: False when the caller knows that no task depends on this one (so
    none waits on it to be canceled with it: store/task_bulk.py asks once for many tasks)."""
    if (why := cancel_refusal(task)) is not None:
        raise IllegalTaskAction(why)
    old = TaskStatus(task.status)
    log_job(session, job, actor, f"task {task.name} canceled" + (f": {reason}" if reason else ""))
    if old in HELD and task.manager_id is not None:
        instruct(session, task.manager_id, "cancel-task", [task.id])
    if old == TaskStatus.ACTIVE:
        # it stops when its Manager hears of it; the Manager's report settles it as canceled
        task.activity = f"cancel requested by {actor}"
        events.publish(session, "task-updated", task_summary(task).model_dump(mode="json"))
        return
    set_task_status(
        session, task, TaskStatus.CANCELED, actor=actor, activity=f"canceled by {actor}", job=job, dependents=dependents
    )


class IllegalTaskAction(ValueError):
    pass


def _names(statuses: frozenset[TaskStatus]) -> str:
    return ", ".join(sorted(statuses))

"""The Server's side of the Manager link: claiming tasks and applying update batches (lease expiry: lease_expiry.py).

Every status change goes through `store.tasks.set_task_status`. Claims walk the runnable jobs in scheduler
order and read tasks through the partial index of runnable tasks, so their cost does not grow with the
number of finished tasks; on PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several Server processes claim at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.jobs import Command, OnTaskFailure
from services.protocol.link import (
    LOG_TAIL_LINES,
    ClaimedTask,
    ClaimRequest,
    RejectedUpdate,
    TaskUpdate,
    UpdateAck,
    UpdateBatch,
    WorkerReport,
)
from services.protocol.states import RUNNABLE_JOB_STATUSES, JobStatus, TaskStatus, WorkerStatus
from services.protocol.tags import required_tags
from services.server.db.tables import (
    JobRow,
    ManagerExclusionRow,
    ManagerRow,
    TaskRow,
    WorkerRow,
)
from services.server.dispatch import Dispatcher, WaitingClaim
from services.server.states.tasks import HELD, IllegalTaskTransition
from services.server.store import (
    events,
    failures,
    farm,
    instructions,
    previews,
    silent,
    worker_admin,
    worker_history,
    worker_limit,
)
from services.server.store.convert import aware, worker_to_wire
from services.server.store.errors import Conflict
from services.server.store.job_counts import JobGone, lock_counters, lock_for_status_changes, read_locked
from services.server.store.tasks import log_job, set_task_status

RUNNABLE = text("tasks.status = 'queued' AND tasks.deps_pending = 0")  # literal: matches ix_tasks_runnable


def _actor(manager: ManagerRow) -> str:
    return f"manager {manager.name}"


# ---- claim ---------------------------------------------------------------------------------------------------


def claim(session: Session, manager: ManagerRow, req: ClaimRequest, lease_seconds: float) -> list[ClaimedTask]:
    """Lease up to `capacity` runnable tasks to the Manager, in scheduler order."""
    farm.seen(session, manager, lease_seconds)
    if req.capacity == 0:
        return []
    # Only jobs with a runnable task of an offered type: one probe of ix_tasks_runnable per job, in the
    # database, rather than a query per job in Python (active jobs whose tasks are all out cost nothing).
    has_runnable = select(TaskRow.id).where(TaskRow.job_id == JobRow.id, RUNNABLE)
    if req.task_types:
        has_runnable = has_runnable.where(TaskRow.type.in_(req.task_types))
    jobs = session.scalars(
        select(JobRow)
        .where(JobRow.status.in_(list(RUNNABLE_JOB_STATUSES)), has_runnable.exists())
        .order_by(JobRow.priority.desc(), JobRow.created, JobRow.id)
    ).all()
    return _lease(session, manager, req, jobs, lease_seconds)


@contextlib.contextmanager
def handing_off(session: Session, dispatcher: Dispatcher, jobs: list[JobRow], lease_seconds: float) -> Iterator[None]:
    """Lease these jobs' runnable tasks to the claims waiting in this process; the block commits.

    Used where a transaction makes a job's tasks runnable (submitted, resumed, requeued); see dispatch.py.
    """
    runnable = [j for j in jobs if JobStatus(j.status) in RUNNABLE_JOB_STATUSES]

    def accepts(waiting: WaitingClaim) -> bool:
        # runs under the dispatcher's lock: attributes already loaded, no queries
        return waiting.request.capacity > 0 and any(
            _may_take(j, waiting.manager_id, set(waiting.request.tags)) for j in runnable
        )

    def lease(waiting: WaitingClaim) -> list[ClaimedTask]:
        manager = session.get(ManagerRow, waiting.manager_id)
        if manager is None:
            return []
        farm.seen(session, manager, lease_seconds)
        return _lease(session, manager, waiting.request, runnable, lease_seconds)

    if not runnable:
        yield
        return
    with dispatcher.offering(accepts, lease):
        yield


def _may_take(job: JobRow, manager_id: int, offered: set[str]) -> bool:
    """The job may go to this Manager: it is not bound to another, and the workers offer all its tags."""
    return job.manager_id in (None, manager_id) and offered.issuperset(required_tags(job.tags))


def _lease(
    session: Session, manager: ManagerRow, req: ClaimRequest, jobs: Sequence[JobRow], lease_seconds: float
) -> list[ClaimedTask]:
    """Lease up to `capacity` runnable tasks of these jobs (in the order given) to the Manager."""
    offered = set(req.tags)
    lease = utcnow() + timedelta(seconds=lease_seconds)
    pg = session.get_bind().dialect.name == "postgresql"
    out: list[ClaimedTask] = []
    waiting_on = {d for job in jobs for d in job.depends_on or []}
    unfinished = (
        set(session.scalars(select(JobRow.id).where(JobRow.id.in_(waiting_on), JobRow.status != JobStatus.COMPLETED)))
        if waiting_on
        else set()
    )
    locked_one = False
    for job in jobs:
        if not _may_take(job, manager.id, offered):
            continue
        if unfinished.intersection(job.depends_on or []):
            continue  # a job runs after the jobs it depends on have completed (a deleted one counts as done)
        if pg:
            # The job's row before its tasks', as a wrangler's action (pause, cancel) locks them: a claim that
            # locked a task and then waited for its job, while a pause held the job and waited for the task,
            # deadlocked. Jobs come in priority order, not in id order as batches lock them, so a claim waits
            # only for the first job it locks: holding one, it passes a job another transaction holds.
            try:
                if not lock_counters(session, job, skip_locked=locked_one):
                    continue
            except JobGone:
                continue
            locked_one = True
        # the task types none of this Manager's workers may run, in the same statement: a query of its own
        # was one more round trip per claim, and most Managers have no exclusion at all
        excluded = select(ManagerExclusionRow.task_type).where(
            ManagerExclusionRow.manager_id == manager.id, ManagerExclusionRow.job_id == job.id
        )
        q = select(TaskRow).where(TaskRow.job_id == job.id, RUNNABLE, TaskRow.type.not_in(excluded))
        if req.task_types:
            q = q.where(TaskRow.type.in_(req.task_types))
        q = q.order_by(TaskRow.index).limit(req.capacity - len(out))
        if pg:
            q = q.with_for_update(skip_locked=True)
        for task in session.scalars(q):
            read_locked(session, task)  # FOR UPDATE on PostgreSQL: its status is current
            # a queued task names a Manager only when a resume kept the one its pause took it from (store/tasks.py)
            resumes = task.attempt if task.manager_id == manager.id else None
            task.attempt += 1
            task.manager_id = manager.id
            task.worker_id = task.worker_name = None
            task.lease_expires = lease
            with session.no_autoflush:
                set_task_status(session, task, TaskStatus.ASSIGNED, actor=_actor(manager), activity="", job=job)
            out.append(_claimed(task, job, resumes))
        if len(out) >= req.capacity:
            break
    return out


def release_claim(session: Session, manager: ManagerRow, task_ids: list[int]) -> None:
    """Put tasks this Manager claimed but never received back in the queue (it hung up while waiting)."""
    for task in session.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids), TaskRow.manager_id == manager.id)):
        if TaskStatus(task.status) == TaskStatus.ASSIGNED:
            set_task_status(session, task, TaskStatus.QUEUED, actor=_actor(manager), activity="claim not delivered")


def _claimed(task: TaskRow, job: JobRow, resumes: int | None = None) -> ClaimedTask:
    return ClaimedTask(
        id=task.id, job_id=job.id, job_name=job.name, job_priority=job.priority, job_created=aware(job.created),
        job_tags=list(job.tags or []), max_task_failures=job.max_task_failures,  # normalised by ClaimedTask
        on_task_failure=OnTaskFailure(job.on_task_failure), index=task.index, name=task.name, type=task.type,
        attempt=task.attempt, failure_count=task.failure_count,
        commands=[Command.model_validate(c) for c in task.commands], steps_total=task.steps_total,
        resumes_attempt=resumes,
    )  # fmt: skip


# ---- update batches ------------------------------------------------------------------------------------------


def apply_batch(
    session: Session,
    manager: ManagerRow,
    batch: UpdateBatch,
    lease_seconds: float,
    sample_seconds: float = worker_history.SAMPLE_SECONDS,
    max_workers: int | None = None,
) -> UpdateAck:
    """Apply a batch once (by seq), renew the leases of held tasks, and hand over pending instructions.

    `max_workers`: worker rows this Manager may have (worker_limit.py); None for no limit."""
    now = utcnow()
    farm.seen(session, manager, lease_seconds, now)
    rejected: list[RejectedUpdate] = []
    applied: set[int] = set()  # tasks of this Manager's, by the updates it took (its worker reports name them)
    if batch.seq > manager.last_seq + 1:
        expected = manager.last_seq + 1
        raise Conflict(
            f"update batch seq {batch.seq} skips ahead of this Server: the next expected is {expected}",
            errors=[("seq", f"expected {expected}")],
        )
    renewed_jobs = _jobs_held(session, manager, batch.held_task_ids)  # locked before any task (job_counts.py)
    if batch.seq == manager.last_seq + 1:
        lease = now + timedelta(seconds=lease_seconds)
        rejected = _apply_updates(session, manager, batch.task_updates, lease, renewed_jobs)
        manager.last_seq = batch.seq
        applied = {u.task_id for u in batch.task_updates} - {r.task_id for r in rejected}
    else:
        lock_for_status_changes(session, [], also_jobs=renewed_jobs)
    # repeats (seq <= last_seq) change nothing; their worker states and leases are current, so use them
    _apply_workers(session, manager, batch.workers, sample_seconds, max_workers, applied)
    previews.apply_reports(session, manager, batch.previews)  # after the workers: a new worker's row exists
    _renew(session, manager, batch.held_task_ids, now + timedelta(seconds=lease_seconds))
    failures.apply_reports(session, manager, batch.blocklist, batch.blocklist_complete)
    if batch.client_url is not None and batch.client_url != manager.client_url:
        manager.client_url = batch.client_url  # where the app reads this Manager's full task logs
    if batch.variables is not None and batch.variables != manager.variables:
        manager.variables = batch.variables  # what a job's paths may name (store/path_variables.py)
    ack = UpdateAck(last_seq=manager.last_seq, rejected=rejected, lease_seconds=lease_seconds)
    instructions.hand_over(session, manager, ack)
    return ack


def _jobs_held(session: Session, manager: ManagerRow, held: list[int]) -> set[int]:
    """The jobs of the tasks among `held` that this Manager holds: their leases are renewed (PostgreSQL only, where
    their rows are locked first; SQLite has one writer at a time)."""
    if session.get_bind().dialect.name != "postgresql":
        return set()
    jobs: set[int] = set()
    for i in range(0, len(held), 1000):
        jobs.update(
            session.scalars(
                select(TaskRow.job_id)
                .where(
                    TaskRow.id.in_(held[i : i + 1000]),
                    TaskRow.manager_id == manager.id,
                    TaskRow.status.in_(list(HELD)),
                )
                .distinct()
            )
        )
    return jobs


def _apply_updates(
    session: Session, manager: ManagerRow, updates: list[TaskUpdate], lease: datetime, renewed_jobs: set[int]
) -> list[RejectedUpdate]:
    tasks: dict[int, TaskRow] = {}
    ids = sorted({u.task_id for u in updates})
    for i in range(0, len(ids), 500):
        for row in session.scalars(select(TaskRow).where(TaskRow.id.in_(ids[i : i + 500]))):
            tasks[row.id] = row
    # what another Server's transaction (a wrangler's cancel) committed meanwhile must be what this batch acts on
    changing = [t for u in updates if (t := tasks.get(u.task_id)) is not None and u.status not in (None, t.status)]
    changing_ids = {t.id for t in changing}
    # progress: written too, their status unchanged (another Manager's are refused below, and not locked)
    others = [t for i, t in tasks.items() if i not in changing_ids and t.manager_id == manager.id]
    if gone := lock_for_status_changes(session, changing, also=others, also_jobs=renewed_jobs):
        # deleted since they were read (a wrangler's delete at another Server): refused as unknown
        for task_id in [i for i, t in tasks.items() if t.job_id in gone]:
            session.expunge(tasks.pop(task_id))
    # every update names its worker; only one that would change the task's worker is looked up (a new run)
    foreign = _others_workers(
        session,
        manager,
        {
            u.worker_id
            for u in updates
            if u.worker_id is not None and (t := tasks.get(u.task_id)) is not None and u.worker_id != t.worker_id
        },
    )
    jobs: dict[int, JobRow] = {}
    rejected: list[RejectedUpdate] = []
    completed = 0
    for u in updates:
        task = tasks.get(u.task_id)
        reason = _refusal(task, manager, u)
        if reason is not None or task is None:
            rejected.append(RejectedUpdate(task_id=u.task_id, reason=reason or "", attempt=u.attempt))
            continue
        if _changes_nothing(task, u):
            # no event, no write but the lease's: an update that repeats what is stored is not news to the
            # farm's clients (a Manager sending thousands of them filled the event log)
            if task.status in HELD:
                task.lease_expires = lease
            continue
        job = jobs.get(task.job_id) or jobs.setdefault(task.job_id, session.get_one(JobRow, task.job_id))
        if u.worker_id is not None and u.worker_id not in foreign:
            task.worker_id, task.worker_name = u.worker_id, u.worker_name
        if u.steps_total is not None:
            task.steps_total = u.steps_total
        if u.steps_done is not None:
            task.steps_done = u.steps_done
        if task.steps_done > task.steps_total:  # a worker's count past its own total: done, not 2,147,483,647 %
            task.steps_done = task.steps_total
        if u.failure_count is not None:
            task.failure_count = u.failure_count
        if u.log_tail:
            task.log_tail = [*(task.log_tail or []), *u.log_tail][-LOG_TAIL_LINES:]
        new = u.status or TaskStatus(task.status)
        activity = u.activity
        if (
            u.unrunnable_here
            and new == TaskStatus.QUEUED
            and (reason := _exclude(session, manager, task, job)) is not None
        ):
            new, activity = TaskStatus.FAILED, reason
            log_job(session, job, _actor(manager), f"task {task.name} failed: {reason}")
        try:
            # Without autoflush: set_task_status's UPDATE of the dependents would otherwise flush every
            # pending row first, once per task (most of a batch's cost). Failures read other tasks'
            # statuses (cancel_dependents), so they keep autoflush.
            started = u.started
            if new == TaskStatus.ACTIVE and u.started is None:
                started = u.time  # a Manager of before `started`: its update's time is the start
            if new in (TaskStatus.FAILED, TaskStatus.CANCELED):
                set_task_status(
                    session, task, new, actor=_actor(manager), activity=activity, job=job, started=started, ended=u.time
                )
            else:
                with session.no_autoflush:
                    set_task_status(
                        session,
                        task,
                        new,
                        actor=_actor(manager),
                        activity=activity,
                        job=job,
                        started=started,
                        ended=u.time,
                    )
        except IllegalTaskTransition as exc:
            rejected.append(RejectedUpdate(task_id=u.task_id, reason=str(exc), attempt=u.attempt))
            continue
        if new in HELD:
            task.lease_expires = lease
        elif new == TaskStatus.COMPLETED and u.status is not None:
            completed += 1
    worker_history.count_completed(session, manager.id, completed)
    return rejected


def _others_workers(session: Session, manager: ManagerRow, named: set[str]) -> set[str]:
    """Which of these worker ids are another Manager's: an update naming one keeps the task's worker as it was (a
    hostile Manager would otherwise show its task running on a worker of another Manager)."""
    if not named:
        return set()
    ids = sorted(named)
    return {
        w
        for i in range(0, len(ids), 1000)
        for w in session.scalars(
            select(WorkerRow.id).where(WorkerRow.id.in_(ids[i : i + 1000]), WorkerRow.manager_id != manager.id)
        )
    }


UNRUNNABLE = "no worker may run it"
CAUSE_MAX_CHARS = 300


def _changes_nothing(task: TaskRow, u: TaskUpdate) -> bool:
    return (
        u.status in (None, task.status)
        and not u.log_tail
        and not u.unrunnable_here
        and u.activity in (None, task.activity)
        and u.steps_done in (None, task.steps_done)
        and u.steps_total in (None, task.steps_total)
        and u.failure_count in (None, task.failure_count)
        and u.worker_id in (None, task.worker_id)
        and u.worker_name in (None, task.worker_name)
    )


def _exclude(session: Session, manager: ManagerRow, task: TaskRow, job: JobRow) -> str | None:
    """The Manager gave the task back because none of its workers may run it (all blocklisted for the job).

    Its claims skip the job's tasks of that type from now on. Returns why the task fails when no other
    Manager has a worker (not offline) that could run it, else None: the task waits for another Manager.
    """
    if session.get(ManagerExclusionRow, (manager.id, job.id, task.type)) is None:
        session.add(ManagerExclusionRow(manager_id=manager.id, job_id=job.id, task_type=task.type, created=utcnow()))
        session.flush()
    excluded = set(
        session.scalars(
            select(ManagerExclusionRow.manager_id).where(
                ManagerExclusionRow.job_id == job.id, ManagerExclusionRow.task_type == task.type
            )
        )
    )
    needed = required_tags(job.tags)
    candidates = select(WorkerRow).where(
        WorkerRow.manager_id.not_in(excluded), WorkerRow.status != WorkerStatus.OFFLINE.value
    )
    if job.manager_id is not None:
        candidates = candidates.where(WorkerRow.manager_id == job.manager_id)
    for worker in session.scalars(candidates):
        if task.type in (worker.task_types or []) and needed <= set(worker.tags or []):
            return None
    reason = (
        f"{UNRUNNABLE}: every {task.type} worker that could is blocklisted for this job "
        f"(last: manager {manager.name}); requeue the job to let them try again"
    )
    # what made them blocklisted, or a wrangler reading this sees no cause: the job's latest failure on a worker
    cause = session.scalar(
        select(TaskRow.activity)
        .where(
            TaskRow.job_id == job.id,
            TaskRow.status.in_([TaskStatus.SOFT_FAILED, TaskStatus.FAILED]),
            TaskRow.activity != "",
            TaskRow.activity.not_like(f"{UNRUNNABLE}%"),
        )
        .order_by(TaskRow.updated.desc(), TaskRow.id.desc())
        .limit(1)
    )
    return f"{reason}; the last failure: {cause[:CAUSE_MAX_CHARS]}" if cause else reason


# what a Manager reports of a task it holds: a run's start and end, or the task given back unstarted (queued)
_REPORTED = frozenset(
    {TaskStatus.ACTIVE, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SOFT_FAILED, TaskStatus.CANCELED,
     TaskStatus.QUEUED}
)  # fmt: skip


def _refusal(task: TaskRow | None, manager: ManagerRow, u: TaskUpdate) -> str | None:
    if task is None:
        return f"no task with id {u.task_id}"
    if task.manager_id != manager.id:
        return f"task {u.task_id} is not held by this Manager"
    if task.attempt != u.attempt:
        return f"attempt {u.attempt} of task {u.task_id} is stale (current: {task.attempt})"
    if u.status is not None and u.status not in _REPORTED:
        # only a wrangler pauses a task (its job) and only a claim assigns one: taken from a Manager, a paused
        # task sat in an active job that nothing would run
        return f"a Manager does not report a task {u.status}"
    if TaskStatus(task.status) not in HELD and not finished_after_stop(task, u):
        return f"task {u.task_id} is {task.status}"
    return None


def finished_after_stop(task: TaskRow, u: TaskUpdate) -> bool:
    """A pause or a cancel took the task back from this Manager while it was assigned, or its lease ran out while
    the Manager was only slow (lease_expiry.py), and its run has completed all the same: the Manager handed it to a
    worker before it heard of the pause or cancel, or reports late (it was down). Its output is kept, not rendered
    again; a canceled job stays canceled (states/jobs.py follow_tasks), with the run counted as completed.

    The caller checked the Manager (a pause and the resume after it, a cancel, and a lease expiry, keep the one the
    task was taken from) and the attempt: the task is paused or canceled, or queued again by the resume or the
    expiry and not claimed since (a claim makes a new attempt and names its Manager; any other way into the queue
    names none). Any other report of such a run stays refused, and its worker is told to stop.
    """
    return u.status == TaskStatus.COMPLETED and TaskStatus(task.status) in (
        TaskStatus.PAUSED,
        TaskStatus.QUEUED,
        TaskStatus.CANCELED,
    )


# how stale WorkerRow.reported may be: a tenth of the time after which a worker no Manager reports goes offline
REPORTED_EVERY = timedelta(seconds=silent.UNREPORTED_SECONDS / 10)


def _apply_workers(
    session: Session,
    manager: ManagerRow,
    reports: list[WorkerReport],
    sample_seconds: float,
    max_workers: int | None,
    applied: set[int],
) -> None:
    now = utcnow()
    forgotten = set(worker_admin.forgotten_ids(session, manager)) if reports else set()
    # one query for the batch's rows, not one each (a renewal reports every worker, up to 1,000 a batch)
    ids = [r.id for r in reports]
    known = {
        w.id: w
        for i in range(0, len(ids), 1000)
        for w in session.scalars(select(WorkerRow).where(WorkerRow.id.in_(ids[i : i + 1000])))
    }
    unknown = {r.id for r in reports if r.id not in known and r.id not in forgotten}
    room = worker_limit.room(session, manager, len(unknown), set(ids), max_workers)
    own_tasks = _own_tasks(session, manager, reports, known, applied)
    for r in reports:
        if r.id in forgotten:
            continue  # a wrangler forgot it; this Manager forgets it with the answer to this batch
        row = known.get(r.id)
        if row is None:
            if room <= 0:
                continue  # past the Manager's limit of workers at this Server (worker_limit.py)
            room -= 1
            row = WorkerRow(id=r.id, manager_id=manager.id, status_requested=None, status_request_lazy=True)
            session.add(row)
            known[r.id] = row  # the same worker twice in one batch: one row
        elif row.manager_id != manager.id:
            continue  # another Manager's worker id: not this Manager's to report
        # a task another Manager holds is not shown at this one's worker (the farm would show two rendering it)
        current = r.current_task_id if r.current_task_id in own_tasks else None
        next_task = r.next_task_id if r.next_task_id in own_tasks else None
        changed = (row.status, row.current_task_id, row.next_task_id, row.name) != (
            r.status.value,
            current,
            next_task,
            r.name,
        )
        row.name, row.platform = r.name, r.platform
        # a JSON column given a new list or dict is written whether or not it changed: a renewal rewrote every
        # worker's row; only what differs is given
        _set_if_changed(row, "task_types", list(r.task_types))
        _set_if_changed(row, "tags", list(r.tags))
        _set_if_changed(row, "software", dict(r.software))
        capabilities = r.capabilities.model_dump(mode="json") if r.capabilities is not None else None
        _set_if_changed(row, "capabilities", capabilities)
        row.status, row.current_task_id, row.next_task_id = r.status.value, current, next_task
        if r.status != WorkerStatus.OFFLINE and (row.reported is None or aware(row.reported) < now - REPORTED_EVERY):
            row.reported = now  # its Manager knows it; noted now and then, not with every report (a row write each)
        row.last_seen = r.last_seen or row.last_seen
        if r.utilisation is not None:
            row.utilisation = r.utilisation.model_dump(mode="json")
            worker_history.record_sample(session, row, r.utilisation, sample_seconds)
            changed = True
        changed = worker_admin.reconcile(row, r) or changed
        unavailable = r.unavailable.value if r.unavailable else None
        if unavailable != row.unavailable:
            row.unavailable = unavailable
            changed = True
        if row.status_requested is not None and row.status_requested == r.status.value:
            row.status_requested = None  # the worker got there
            changed = True
        if changed:
            session.flush()
            events.publish(session, "worker-updated", worker_to_wire(row).model_dump(mode="json"))


def _own_tasks(
    session: Session, manager: ManagerRow, reports: list[WorkerReport], known: dict[str, WorkerRow], applied: set[int]
) -> set[int | None]:
    """The task ids the reports name that this Manager may show its workers at (None, no task, among them): the
    ones its rows show already, those its updates in this batch changed, and those of the others it holds,
    looked up in one query."""
    named: set[int] = set()
    shown: set[int | None] = {None, *applied}
    for r in reports:
        row = known.get(r.id)
        for task_id in (r.current_task_id, r.next_task_id):
            if task_id is None:
                continue
            if row is not None and row.manager_id == manager.id and task_id in (row.current_task_id, row.next_task_id):
                shown.add(task_id)  # checked when its row took it
            else:
                named.add(task_id)
    found = sorted(named - shown)
    for i in range(0, len(found), 1000):
        batch = found[i : i + 1000]
        shown.update(session.scalars(select(TaskRow.id).where(TaskRow.id.in_(batch), TaskRow.manager_id == manager.id)))
    return shown


def _set_if_changed(row: WorkerRow, name: str, value: Any) -> None:
    if getattr(row, name) != value:
        setattr(row, name, value)


def _renew(session: Session, manager: ManagerRow, held: list[int], lease: datetime) -> None:
    for i in range(0, len(held), 1000):
        session.execute(
            update(TaskRow)
            .where(
                TaskRow.id.in_(held[i : i + 1000]),
                TaskRow.manager_id == manager.id,
                TaskRow.status.in_(list(HELD)),
            )
            .values(lease_expires=lease)
            .execution_options(synchronize_session=False)
        )

"""A wrangler's requeue or cancel of many tasks (`POST /tasks/bulk`): the single task route's store functions, in
bounded transactions.

Each task goes through `requeue_task` / `cancel_task` as `POST /tasks/{id}/status` takes it, so its events, job log
line and counters are those of one request per task in id order. What is batched is what surrounds them: the
tasks of up to `PER_TRANSACTION` ids are read with one query, their jobs' rows locked in id order and then the
tasks' rows (store/job_counts.py `lock_for_status_changes`: a job's row before any of its tasks', as every other
writer of tasks locks them, or PostgreSQL deadlocks), all before the first change; which of them other tasks
depend on is asked once; the workers' another chance at a job's tasks of a type (an instruction to every Manager)
is given once per transaction instead of once per task. A refused task (`requeue_refusal`, `cancel_refusal`,
another artist's job, the farm's policy) is told before anything of it is written, so it needs no savepoint and
stops no other; a transaction committed is not undone by a later one's refusal. A job changed by many tasks
of a transaction is sent in one `job-updated` event at its commit instead of one per task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.jobs import TaskAction
from services.server.db.tables import JobRow, TaskDependencyRow, TaskRow
from services.server.store import jobs as job_store
from services.server.store import tasks as task_store
from services.server.store.errors import NotFound, StoreError
from services.server.store.job_counts import lock_for_status_changes
from services.server.store.jobs import Actor

PER_TRANSACTION = 1000  # tasks: the write lock (SQLite) is given up between them, for the farm's other writers
Finish = Callable[[Session, list[JobRow]], AbstractContextManager[object]]  # the block commits (api: handing_off)
Refusals = dict[int, str]  # task id → why it was refused; absent: done


def act(
    session: Session,
    ids: Sequence[int],
    action: TaskAction,
    actor: Actor,
    reason: str,
    may_run_again: Callable[[JobRow], None],
    finish: Finish,
) -> Refusals:
    """Requeue or cancel these tasks (unique ids), `PER_TRANSACTION` at a time in id order, each transaction
    committed within `finish`; returns the refused ones. `may_run_again(job)` raises the farm policy's refusal
    of a requeue of the job's tasks, as the single route asks it."""
    refused: Refusals = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), PER_TRANSACTION):
        chunk = ordered[start : start + PER_TRANSACTION]
        acted_on = _one_transaction(session, chunk, action, actor, reason, may_run_again, refused)
        with finish(session, acted_on):
            session.commit()
        session.expunge_all()  # 10,000 tasks read stay in memory no longer than their transaction
    return refused


def _one_transaction(
    session: Session,
    ids: list[int],
    action: TaskAction,
    actor: Actor,
    reason: str,
    may_run_again: Callable[[JobRow], None],
    refused: Refusals,
) -> list[JobRow]:
    tasks = {t.id: t for t in session.scalars(select(TaskRow).where(TaskRow.id.in_(ids)))}  # one query
    for task_id in ids:
        if task_id not in tasks:
            refused[task_id] = f"no task with id {task_id}"  # the single route's 404
    by_job: dict[int, list[TaskRow]] = {}
    for task in sorted(tasks.values(), key=lambda t: t.id):
        by_job.setdefault(task.job_id, []).append(task)
    jobs: dict[int, JobRow] = {}
    for job_id in sorted(by_job):  # the jobs' rows first, in id order, as every writer of several jobs locks them
        try:
            jobs[job_id] = job_store.get(session, job_id, for_update=True)
        except NotFound:  # deleted since its tasks were read: so are they
            for task in by_job.pop(job_id):
                refused[task.id] = f"no task with id {task.id}"
    gone = lock_for_status_changes(session, [t for group in by_job.values() for t in group])  # then the tasks
    awaited = (
        _awaited(session, sorted(t.id for group in by_job.values() for t in group)) if action == "cancel" else set()
    )
    acted_on = []
    given: set[tuple[int, str]] = set()  # (job, task type) whose workers got another chance in this transaction
    for job_id, group in by_job.items():
        job = jobs[job_id]
        try:
            if job_id in gone:
                raise NotFound(f"job {job_id} was deleted meanwhile", field="id")
            job_store.check_may_manage(job, actor)  # the single route's refusals, in its order
            if action == "requeue":
                may_run_again(job)
        except StoreError as exc:
            for task in group:
                refused[task.id] = exc.message
            continue
        done = 0
        for task in group:  # each sees what those before it changed (a failed job, a canceled dependent)
            if action == "requeue":
                if (why := task_store.requeue_refusal(task, job)) is None:
                    key = (job_id, task.type)
                    task_store.requeue_task(
                        session, task, job, actor=actor.name, reason=reason, another_chance=key not in given
                    )
                    given.add(key)
            elif (why := task_store.cancel_refusal(task)) is None:
                task_store.cancel_task(
                    session, task, job, actor=actor.name, reason=reason, dependents=task.id in awaited
                )
            if why is None:
                done += 1
            else:
                refused[task.id] = why
        if done:
            acted_on.append(job)
    return acted_on


def _awaited(session: Session, task_ids: list[int]) -> set[int]:
    """Those of these tasks that others depend on: only their cancel may cancel other tasks with them."""
    found: set[int] = set()
    for i in range(0, len(task_ids), 500):
        chunk = task_ids[i : i + 500]
        found.update(
            session.scalars(
                select(TaskDependencyRow.depends_on_id).where(TaskDependencyRow.depends_on_id.in_(chunk)).distinct()
            )
        )
    return found

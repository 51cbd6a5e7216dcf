"""Job submission without holding other writers: the job row first (under construction, so nothing runs it),
compilation outside any lock, the tasks in chunks of short transactions, then the job made queued atomically.

A failure anywhere removes what was stored, so a refused job leaves nothing behind; the job-created event is
written only with the final step. The farm's job-size limit and per-user quotas are checked on the way.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, bindparam, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import utcnow
from services.protocol.jobs import JobSubmission
from services.protocol.states import FINISHED_JOB_STATUSES, JobStatus, TaskStatus
from services.server.db.tables import JobLogRow, JobRow, ManagerRow, TaskDependencyRow, TaskRow
from services.server.jobtypes.base import CompiledTask, CompileError, JobContext, JobType
from services.server.jobtypes.registry import get_job_type, job_types
from services.server.store import events, failures, host_check
from services.server.store.convert import job_to_wire
from services.server.store.errors import Conflict, Invalid
from services.server.store.jobs import Actor, pydantic_errors, store_task_rows
from services.server.store.tasks import log_job

CHUNK = 5_000  # tasks per transaction: well under 0.1 s of writing, so other writers wait at most that long
# between chunks: preparing rows is Python holding the GIL, and other requests' threads need a turn too
CHUNK_PAUSE = 0.01
# a job of at most this many tasks is compiled and stored in one transaction (compiling it takes well under a
# millisecond): one commit instead of two, which is most of a small job's submit time
SMALL_JOB = 100

_STORED = CompiledTask(name="", type="", commands=[])  # in place of the tasks already stored

_collector = threading.Lock()
_collector_holders = 0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a job is built: a million tasks are some ten million objects,
    and each full collection over them holds the GIL for seconds, stalling every other request. Reference
    counting still frees them; the collector comes back when the last submission in progress ends."""
    global _collector_holders
    with _collector:
        ours = _collector_holders > 0 or gc.isenabled()  # off already, by someone else: leave it to them
        if ours:
            gc.disable()
            _collector_holders += 1
    try:
        yield
    finally:
        if ours:
            with _collector:
                _collector_holders -= 1
                if _collector_holders == 0:
                    gc.enable()


@dataclass(frozen=True)
class Limits:
    """The farm's limits on load (ServerConfig); None: no limit."""

    max_tasks_per_job: int | None = None
    max_active_jobs_per_user: int | None = None
    max_unfinished_tasks_per_user: int | None = None


def submit(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    sub: JobSubmission,
    actor: Actor,
    limits: Limits,
    finish: Callable[[Session, JobRow], AbstractContextManager[object]],
) -> JobRow:
    """Validate, compile and store a job; `finish(session, job)` wraps the final commit (the hand-off to
    waiting Managers). Returns the job as committed."""
    jt = get_job_type(sub.type)
    if jt is None:
        raise Invalid(f"unknown job type {sub.type!r} (known: {', '.join(job_types())})", field="type")
    try:
        settings = jt.Settings.model_validate(sub.settings)
    except ValidationError as exc:
        errors = pydantic_errors(exc, "settings")
        raise Invalid("; ".join(f"{f}: {m}" for f, m in errors), errors=errors) from exc

    with _collector_paused():
        return _build(read_sessions, write_sessions, sub, actor, limits, finish, jt, settings)


def _build(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    sub: JobSubmission,
    actor: Actor,
    limits: Limits,
    finish: Callable[[Session, JobRow], AbstractContextManager[object]],
    jt: JobType,
    settings: Any,
) -> JobRow:
    now = utcnow()
    with write_sessions() as session:
        _check_references(session, sub)
        _check_active_jobs(session, actor, limits)
        job = JobRow(
            name=sub.name, type=sub.type, settings=settings.model_dump(mode="json"), priority=sub.priority,
            submitter=actor.name, tags=sorted(set(sub.tags)), manager_id=sub.manager_id,
            depends_on=sorted(set(sub.depends_on)), max_task_failures=sub.max_task_failures,
            on_task_failure=sub.on_task_failure, status=JobStatus.UNDER_CONSTRUCTION, activity="",
            created=now, updated=now,
        )  # fmt: skip
        session.add(job)
        session.flush()  # its id, for the compiler
        job_id = job.id
        context = JobContext(job_id, sub.name, actor.name, now)
        try:
            tasks = iter(jt.compile(context, settings))
            head = list(itertools.islice(tasks, SMALL_JOB + 1))
        except CompileError as exc:  # nothing committed: the rollback leaves nothing behind
            raise Invalid(exc.message, field=f"settings.{exc.field}") from exc
        if len(head) <= SMALL_JOB:
            _check_size(session, actor, head, limits)
            return _store_last(session, job, head, _task_types(head), 0, [], sub, actor, now, finish)
        session.commit()
    try:
        try:
            # our own list, so each chunk's tasks can be let go once stored: freeing a million at the end would
            # hold the GIL for a second
            compiled = head + list(tasks)
        except CompileError as exc:
            raise Invalid(exc.message, field=f"settings.{exc.field}") from exc
        with read_sessions() as session:
            _check_size(session, actor, compiled, limits)
        task_types = _task_types(compiled)  # before the chunks below let the tasks go
        status = TaskStatus.PAUSED if sub.start_paused else TaskStatus.QUEUED
        ids: list[int] = []
        # every chunk but the last in a transaction of its own; the last one with the switch to queued
        for start in range(0, len(compiled) - CHUNK, CHUNK):
            with write_sessions() as session:
                store_task_rows(session, job_id, compiled, now, start, start + CHUNK, ids, status)
                session.commit()
            compiled[start : start + CHUNK] = [_STORED] * CHUNK
            time.sleep(CHUNK_PAUSE)
        with write_sessions() as session:
            job = session.get_one(JobRow, job_id)
            return _store_last(session, job, compiled, task_types, len(ids), ids, sub, actor, now, finish)
    except BaseException:
        _discard(write_sessions, job_id)
        raise


def _store_last(
    session: Session,
    job: JobRow,
    compiled: list[CompiledTask],
    task_types: list[str],
    last: int,
    ids: list[int],
    sub: JobSubmission,
    actor: Actor,
    now: datetime,
    finish: Callable[[Session, JobRow], AbstractContextManager[object]],
) -> JobRow:
    """The job's last tasks (all of a small job's) and its switch to queued, in the caller's session."""
    initial = JobStatus.PAUSED if sub.start_paused else JobStatus.QUEUED
    status = TaskStatus.PAUSED if sub.start_paused else TaskStatus.QUEUED
    total = len(compiled)
    store_task_rows(session, job.id, compiled, now, last, total, ids, status)
    job.tasks_total = total
    job.task_types = task_types
    job.status = initial
    log_job(session, job, actor.name, f"submitted by {actor.name}: {total} tasks, {initial}")
    for problem in host_check.unmet_steps(session, job):  # openjd hostRequirements nobody meets
        log_job(session, job, "tablao", problem)
        job.activity = problem
    failures.note_blocked_at_submission(session, job)
    events.publish(session, "job-created", job_to_wire(job).model_dump(mode="json"))
    with finish(session, job):
        session.commit()
    return job


def _task_types(compiled: Sequence[CompiledTask]) -> list[str]:
    return sorted({t.type for t in compiled})


def _check_references(session: Session, sub: JobSubmission) -> None:
    if sub.manager_id is not None and session.get(ManagerRow, sub.manager_id) is None:
        raise Invalid(f"no manager with id {sub.manager_id}", field="manager_id")
    if sub.depends_on:
        found = set(session.scalars(select(JobRow.id).where(JobRow.id.in_(sub.depends_on))))
        if missing := sorted(set(sub.depends_on) - found):
            raise Invalid(f"no job with id {missing[0]}", field="depends_on")


# the quota queries, built once (building them took longer than running them): the submitter is a parameter
_UNFINISHED: ColumnElement[bool] = and_(
    JobRow.submitter == bindparam("submitter"), JobRow.status.not_in([s.value for s in FINISHED_JOB_STATUSES])
)
_ACTIVE_JOBS = select(func.count()).select_from(JobRow).where(_UNFINISHED)
_TASKS_LEFT = select(
    func.coalesce(
        func.sum(JobRow.tasks_total - JobRow.tasks_completed - JobRow.tasks_failed - JobRow.tasks_canceled), 0
    )
).where(_UNFINISHED)


def _check_active_jobs(session: Session, actor: Actor, limits: Limits) -> None:
    cap = limits.max_active_jobs_per_user
    if cap is None:
        return
    active = session.scalar(_ACTIVE_JOBS, {"submitter": actor.name}) or 0
    if active >= cap:
        raise Conflict(
            f"{actor.name} has {active} unfinished jobs, the farm's limit per user (finish or cancel some first)",
            field="quota",
        )


def _check_size(session: Session, actor: Actor, compiled: Sequence[CompiledTask], limits: Limits) -> None:
    n = len(compiled)
    if not n:
        raise Invalid("the settings produce no tasks", field="settings")
    if limits.max_tasks_per_job is not None and n > limits.max_tasks_per_job:
        raise Invalid(f"the settings produce {n} tasks, over the farm's limit of {limits.max_tasks_per_job} per job",
                      field="settings")  # fmt: skip
    cap = limits.max_unfinished_tasks_per_user
    if cap is None:
        return
    held = session.scalar(_TASKS_LEFT, {"submitter": actor.name}) or 0
    if held + n > cap:
        raise Conflict(
            f"{actor.name} has {held} unfinished tasks; {n} more would pass the farm's limit of {cap} per user",
            field="quota",
        )


def _discard(write_sessions: sessionmaker[Session], job_id: int) -> None:
    """Removes a job that could not be built, with whatever of it was stored."""
    with write_sessions() as session:
        task_ids = select(TaskRow.id).where(TaskRow.job_id == job_id)
        session.execute(delete(TaskDependencyRow).where(TaskDependencyRow.task_id.in_(task_ids)))
        session.execute(delete(TaskRow).where(TaskRow.job_id == job_id))
        session.execute(delete(JobLogRow).where(JobLogRow.job_id == job_id))
        session.execute(delete(JobRow).where(JobRow.id == job_id))
        session.commit()

"""Job submission without holding other writers or the whole job in memory: the job row first (under
construction, so nothing runs it), then a chunk of tasks compiled (outside any lock) and stored in a short
transaction, the next chunk compiled, and so on; last, the job made queued atomically.

Each chunk's transaction touches the job's `updated` (the heartbeat the orphan sweep watches, store/orphans.py)
and stops the submission if the job was canceled or is being removed meanwhile. A failure anywhere removes what
was stored, in batches, so a refused job leaves nothing behind; the job-created event is written only with the
final step. The farm's job-size limit and per-user quotas are checked before anything is stored when the job type
can tell its size from the settings (`JobType.estimate`: every built-in one can), and as the tasks come anyway.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import plural, utcnow
from services.protocol.jobs import JobSubmission
from services.protocol.states import FINISHED_JOB_STATUSES, JobStatus, TaskStatus
from services.server.db.tables import JobRow, ManagerRow
from services.server.jobtypes.base import (
    MAX_COMMAND_BYTES,
    CompiledTask,
    CompileError,
    JobContext,
    JobType,
    SizeEstimate,
    command_bytes,
)
from services.server.jobtypes.registry import get_job_type, job_types
from services.server.store import counted, events, failures, host_check, id_floors, orphans, submit_keys
from services.server.store.convert import job_to_wire
from services.server.store.errors import Conflict, Invalid
from services.server.store.jobs import Actor, settings_invalid
from services.server.store.task_writer import TaskWriter
from services.server.store.tasks import log_job

CHUNK = 5_000  # tasks per transaction: well under 0.1 s of writing, so other writers wait at most that long
CHUNK_BYTES = 16 * 2**20  # and their commands at most about this much (JSON), held in memory at once
DEPENDENCY_SLICE = 20_000  # dependency rows per transaction (two integers each, four times quicker than a task)
# between chunks: preparing rows is Python holding the GIL, and other requests' threads need a turn too
CHUNK_PAUSE = 0.01
# a job of at most this many tasks is compiled and stored in one transaction (compiling it takes well under a
# millisecond): one commit instead of several, which is most of a small job's submit time
SMALL_JOB = 100

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
class SubmitKey:
    """A submission's Idempotency-Key and its body's digest (submit_keys.py)."""

    key: str
    digest: str


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
    builds: orphans.Builds | None = None,
    key: SubmitKey | None = None,
) -> JobRow:
    """Validate, compile and store a job; `finish(session, job)` wraps the final commit (the hand-off to
    waiting Managers); `builds` tells this process's orphan sweep which jobs are being written; `key` is stored
    with the job (submit_keys.py: KeyTaken if another submission stored it first). Returns the job as committed."""
    jt = get_job_type(sub.type)
    if jt is None:
        raise Invalid(f"unknown job type {sub.type!r} (known: {', '.join(job_types())})", field="type")
    try:
        settings = jt.Settings.from_submission(sub.settings)
    except ValidationError as exc:
        raise settings_invalid(exc, "settings", jt.Settings) from exc
    try:
        size = jt.estimate(settings)
    except CompileError as exc:
        raise Invalid(exc.message, field=f"settings.{exc.field}") from exc
    if size is not None:
        _check_estimate(size, limits)

    with _collector_paused():
        builds = builds or orphans.Builds()
        return _build(read_sessions, write_sessions, sub, actor, limits, finish, jt, settings, builds, size, key)


def _build(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    sub: JobSubmission,
    actor: Actor,
    limits: Limits,
    finish: Callable[[Session, JobRow], AbstractContextManager[object]],
    jt: JobType,
    settings: Any,
    builds: orphans.Builds,
    size: SizeEstimate | None,
    key: SubmitKey | None,
) -> JobRow:
    now = utcnow()
    with write_sessions() as session:
        if key is not None and submit_keys.taken(session, actor, key.key):
            raise submit_keys.KeyTaken  # a repeat got here first: its job counts in the quota checked next
        _check_references(session, sub)
        held = _check_active_jobs(session, actor, limits)
        if size is not None:  # the per-user quota too, before the job row is written
            _check_size(size.tasks, held, actor, limits)
        job = JobRow(
            id=id_floors.new_job_id(session),
            name=sub.name, type=sub.type, settings=settings.model_dump(mode="json"), priority=sub.priority,
            submitter=actor.name, tags=sorted(set(sub.tags)), manager_id=sub.manager_id,
            depends_on=sorted(set(sub.depends_on)), max_task_failures=sub.max_task_failures,
            on_task_failure=sub.on_task_failure, status=JobStatus.UNDER_CONSTRUCTION, activity="",
            created=now, updated=now, tasks_total=size.tasks if size is not None else 0,
            submit_key=key.key if key else None, submit_digest=key.digest if key else None,
        )  # fmt: skip
        session.add(job)
        try:
            session.flush()  # its id, for the compiler
        except IntegrityError as exc:
            if key is None or not submit_keys.is_key_clash(exc):
                raise
            raise submit_keys.KeyTaken from None  # the same key's other submission, committed meanwhile
        job_id = job.id
        writer = TaskWriter(job_id, now, TaskStatus.PAUSED if sub.start_paused else TaskStatus.QUEUED)
        stream = iter(jt.compile(JobContext(job_id, sub.name, actor.name, now), settings))
        head = _next_chunk(stream, SMALL_JOB + 1)  # a refusal here rolls back: nothing is left behind
        if len(head) <= SMALL_JOB:  # a small job is stored in this one transaction: one commit, not several
            _check_size(len(head), held, actor, limits)
            writer.add(session, head)
            writer.write_dependencies(session)
            return _finish_job(session, job, writer, sub, actor, finish)
        session.commit()
    with builds.writing(job_id):
        try:
            _store_tasks(read_sessions, write_sessions, actor, limits, writer, head, stream, size)
            with write_sessions() as session:
                _heartbeat(session, job_id)
                return _finish_job(session, session.get_one(JobRow, job_id), writer, sub, actor, finish)
        except BaseException:
            _discard(write_sessions, job_id)
            raise


def _finish_job(
    session: Session,
    job: JobRow,
    writer: TaskWriter,
    sub: JobSubmission,
    actor: Actor,
    finish: Callable[[Session, JobRow], AbstractContextManager[object]],
) -> JobRow:
    """The switch from under construction to queued (or paused), with what the job's log and activity say."""
    if not writer.count:
        raise Invalid("the settings produce no tasks", field="settings")
    initial = JobStatus.PAUSED if sub.start_paused else JobStatus.QUEUED
    job.tasks_total = writer.count
    job.task_types = sorted(writer.types)
    job.status = initial
    log_job(session, job, actor.name, f"submitted by {actor.name}: {plural(writer.count, 'task')}, {initial}")
    workers = host_check.offers(session, job)
    unmet = [host_check.unmet_task_types(job, workers), host_check.unmet_tags(job, workers)]
    for problem in [*filter(None, unmet), *host_check.unmet_steps(session, job)]:
        log_job(session, job, "tablao", problem)  # tags, openjd hostRequirements: nobody has them
        job.activity = problem
    failures.note_blocked_at_submission(session, job)
    events.publish(session, "job-created", job_to_wire(job).model_dump(mode="json"))
    with finish(session, job):
        session.commit()
    return job


def tasks_per_chunk(sample: list[CompiledTask]) -> int:
    """CHUNK tasks, or fewer when their commands are big (measured on the last chunk's first few): 2,098 tasks of
    250 kB commands each were one chunk, 1 GB of the Server's memory at once, and the memory stayed taken."""
    looked = sample[:8]
    largest = max((command_bytes(task) for task in looked), default=1)
    return max(1, min(CHUNK, CHUNK_BYTES // max(largest, 1)))


def _next_chunk(stream: Iterator[CompiledTask], n: int) -> list[CompiledTask]:
    try:
        return list(islice(stream, n))  # compiled here, outside any transaction of the big-job path
    except CompileError as exc:
        raise Invalid(exc.message, field=f"settings.{exc.field}") from exc


def _store_tasks(
    read_sessions: sessionmaker[Session],
    write_sessions: sessionmaker[Session],
    actor: Actor,
    limits: Limits,
    writer: TaskWriter,
    chunk: list[CompiledTask],
    stream: Iterator[CompiledTask],
    size: SizeEstimate | None,
) -> None:
    """Stores `chunk`, then compiles and stores the rest of `stream` a chunk at a time.

    While it is being stored the job counts in its submitter's quota with its estimated tasks (set with the job
    row), or those stored so far where its type makes no estimate: it counted none, and two big jobs submitted at
    once each passed a quota only both together went over. The quota is read again before each chunk."""
    reserved = size.tasks if size is not None else 0
    while chunk:
        with read_sessions() as session:
            held = _held_tasks(session, actor, limits, but=writer.job_id)
        _check_size(writer.count + len(chunk), held, actor, limits)
        more, first = True, True
        while more:  # the chunk's tasks, then its dependency rows a slice per transaction
            with write_sessions() as session:
                _heartbeat(session, writer.job_id, tasks=max(reserved, writer.count + (len(chunk) if first else 0)))
                if first:
                    writer.add(session, chunk)
                    first = False
                more = writer.write_dependencies(session, DEPENDENCY_SLICE)
                session.commit()
            time.sleep(CHUNK_PAUSE)
        n = tasks_per_chunk(chunk)
        del chunk  # let the stored tasks go before the next chunk is compiled
        chunk = _next_chunk(stream, n)


def _heartbeat(session: Session, job_id: int, tasks: int | None = None) -> None:
    """Marks the job as being written (the orphan sweep's clue), or stops if someone canceled it or the sweep
    took it for an orphan meanwhile. `tasks`: what the job counts in its submitter's quota meanwhile."""
    touched = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.status == JobStatus.UNDER_CONSTRUCTION.value,
            JobRow.activity.not_in(orphans.REMOVAL_MARKS),
        )
        .values(updated=utcnow(), **({} if tasks is None else {"tasks_total": tasks}))
        .execution_options(synchronize_session=False)
    )
    if touched.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"job {job_id} was canceled or removed while its tasks were being stored; submit it again",
            field="status",
        )


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
_TASKS_LEFT_SUM = func.coalesce(
    func.sum(JobRow.tasks_total - JobRow.tasks_completed - JobRow.tasks_failed - JobRow.tasks_canceled), 0
)
_QUOTA_USE = select(func.count(), _TASKS_LEFT_SUM).select_from(JobRow).where(_UNFINISHED)
_TASKS_LEFT = select(_TASKS_LEFT_SUM).where(_UNFINISHED, JobRow.id != bindparam("but"))


def _check_active_jobs(session: Session, actor: Actor, limits: Limits) -> int:
    """Refuses a job over the actor's quota of unfinished jobs; returns the actor's unfinished tasks, read in
    the same statement (a small job's submission is a handful of statements: each one counts)."""
    if limits.max_active_jobs_per_user is None and limits.max_unfinished_tasks_per_user is None:
        return 0
    counted.count_alone(session, counted.USER_QUOTAS, actor.name)  # to this transaction's end: its job counts next
    active, held = session.execute(_QUOTA_USE, {"submitter": actor.name}).one()
    cap = limits.max_active_jobs_per_user
    if cap is not None and active >= cap:
        raise Conflict(
            f"{actor.name} has {active} unfinished jobs, the farm's limit per user (finish or cancel some first)",
            field="quota",
        )
    return int(held or 0)


def _held_tasks(session: Session, actor: Actor, limits: Limits, but: int) -> int:
    """The actor's tasks not finished yet but job `but`'s, if the farm has a quota on them."""
    if limits.max_unfinished_tasks_per_user is None:
        return 0
    return session.scalar(_TASKS_LEFT, {"submitter": actor.name, "but": but}) or 0


def _check_estimate(size: SizeEstimate, limits: Limits) -> None:
    """Refuses a job too big for the farm from its job type's estimate, before any of it is built or stored."""
    cap = limits.max_tasks_per_job
    if cap is not None and size.tasks > cap:
        raise Invalid(f"the settings produce {size.tasks:,} tasks, over the farm's limit of {cap:,} per job",
                      field="settings")  # fmt: skip
    if size.command_bytes > MAX_COMMAND_BYTES:
        mib = 1024 * 1024
        raise Invalid(
            f"the settings produce {size.tasks:,} tasks whose commands would take about "
            f"{size.command_bytes // mib:,} MiB, over the farm's limit of {MAX_COMMAND_BYTES // mib} MiB per job; "
            "make the settings' text shorter or the tasks fewer",
            field="settings",
        )


def _check_size(n: int, held: int, actor: Actor, limits: Limits) -> None:
    """`n`: the tasks compiled so far, before any more are stored."""
    if limits.max_tasks_per_job is not None and n > limits.max_tasks_per_job:
        raise Invalid(f"the settings produce more than {limits.max_tasks_per_job} tasks, over the farm's limit of "
                      f"{limits.max_tasks_per_job} per job", field="settings")  # fmt: skip
    cap = limits.max_unfinished_tasks_per_user
    if cap is not None and held + n > cap:
        raise Conflict(
            f"{actor.name} has {held} unfinished tasks; {n} or more would pass the farm's limit of {cap} per user",
            field="quota",
        )


def take_over(
    write_sessions: sessionmaker[Session],
    job_id: int,
    actor: Actor,
    key: str,
    bound: float,
    builds: orphans.Builds,
    started: datetime | None,
) -> bool:
    """For a repeat of the submission `key`: claims its job `job_id` if the Server writing it died (orphans.py
    take_over) and removes it, so the repeat stores the submission anew. False: its writer is alive, or another
    repeat claimed it first."""
    with write_sessions() as session:
        claimed = orphans.take_over(
            session, job_id, submitter=actor.name, key=key, bound=bound, builds=builds, started=started
        )
        session.commit()
    if claimed:
        _discard(write_sessions, job_id)  # a sweep meeting it meanwhile takes turns with this (remove_batch)
    return claimed


def _discard(write_sessions: sessionmaker[Session], job_id: int) -> None:
    """Removes a job that could not be built, with whatever of it was stored, in short transactions."""
    more = True
    while more:
        with write_sessions() as session:
            more = orphans.remove_batch(session, job_id)
            session.commit()
        if more:
            time.sleep(CHUNK_PAUSE)

"""Jobs: submission in one transaction (for tests and set-ups; the API's is store/submission.py), listing,
detail, wrangler actions, priority and deletion."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import Text, cast, delete, func, select, tuple_
from sqlalchemy.orm import Session

from services.protocol import api_contract
from services.protocol.common import plural, utcnow
from services.protocol.jobs import JobAction, JobSubmission
from services.protocol.states import FINISHED_JOB_STATUSES, JobStatus, Role, TaskStatus
from services.server.db.engine import UNICODE_LOWER
from services.server.db.tables import JobLogRow, JobRow, ManagerRow, TaskDependencyRow, TaskRow
from services.server.jobtypes.base import CompileError, JobContext, paused_gc
from services.server.jobtypes.registry import get_job_type, job_types
from services.server.states import jobs as job_states
from services.server.states.tasks import HELD as HELD_STATUSES
from services.server.store import events, id_floors, orphans, paging
from services.server.store.convert import job_to_wire
from services.server.store.errors import Conflict, Forbidden, Invalid, NotFound
from services.server.store.task_writer import TaskWriter
from services.server.store.tasks import (
    follow_job,
    give_workers_another_chance,
    instruct,
    log_job,
    requeue_where,
    set_job_status,
    still_running,
    stop_unfinished,
)

PAGE_SETTINGS_BYTES = 8 * 1024 * 1024  # a page of jobs ends early rather than carry more of their settings
TASK_CHUNK = 10_000  # tasks compiled and inserted at a time, so a big job is never all in memory

SORTABLE = {
    "created": JobRow.created,
    "updated": JobRow.updated,
    "priority": JobRow.priority,
    "name": JobRow.name,
    "status": JobRow.status,
}


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role


def settings_invalid(exc: ValidationError, prefix: str, settings: type[BaseModel] | None = None) -> Invalid:
    """A job type's refusal of its settings as the API's 422: its first ERRORS_SHOWN errors, and how many more
    (10,000 unknown settings were 10,000 errors in the answer, each in `detail` again). An unknown setting of
    `settings` (the job type's model) says which it likely meant: `comand` was "Extra inputs are not permitted"."""
    known = sorted(settings.model_fields) if settings is not None else []
    out = []
    for err in exc.errors(include_url=False, include_input=False)[: api_contract.ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        message = api_contract.error_message(err)
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1 and known:
            close = difflib.get_close_matches(str(err["loc"][0]).lower(), known, n=1)
            message = f"not a setting of this job type (its settings: {', '.join(known)})" + (
                f"; did you mean {close[0]!r}?" if close else ""
            )
        out.append((loc, message))
    return Invalid(api_contract.error_detail(out, exc.error_count()), errors=out)


def submit(session: Session, sub: JobSubmission, actor: Actor) -> JobRow:
    """Validate, compile and store a job with all its tasks, in the caller's transaction."""
    jt = get_job_type(sub.type)
    if jt is None:
        known = ", ".join(job_types())
        raise Invalid(f"unknown job type {sub.type!r} (known: {known})", field="type")
    try:
        settings = jt.Settings.from_submission(sub.settings)
    except ValidationError as exc:
        raise settings_invalid(exc, "settings", jt.Settings) from exc
    if sub.manager_id is not None and session.get(ManagerRow, sub.manager_id) is None:
        raise Invalid(f"no manager with id {sub.manager_id}", field="manager_id")
    if sub.depends_on:
        found = set(session.scalars(select(JobRow.id).where(JobRow.id.in_(sub.depends_on))))
        if missing := sorted(set(sub.depends_on) - found):
            raise Invalid(f"no job with id {missing[0]}", field="depends_on")

    now = utcnow()
    job = JobRow(
        id=id_floors.new_job_id(session),
        name=sub.name,
        type=sub.type,
        settings=settings.model_dump(mode="json"),
        priority=sub.priority,
        submitter=actor.name,
        tags=sorted(set(sub.tags)),
        manager_id=sub.manager_id,
        depends_on=sorted(set(sub.depends_on)),
        max_task_failures=sub.max_task_failures,
        on_task_failure=sub.on_task_failure,
        status=JobStatus.UNDER_CONSTRUCTION,
        activity="",
        created=now,
        updated=now,
    )
    session.add(job)
    session.flush()
    initial = JobStatus.PAUSED if sub.start_paused else JobStatus.QUEUED
    writer = TaskWriter(job.id, now, TaskStatus.PAUSED if sub.start_paused else TaskStatus.QUEUED)
    stream = iter(jt.compile(JobContext(job.id, job.name, actor.name, now), settings))
    with paused_gc():
        try:
            while chunk := list(islice(stream, TASK_CHUNK)):
                writer.add(session, chunk)
                writer.write_dependencies(session)
        except CompileError as exc:
            raise Invalid(exc.message, field=f"settings.{exc.field}") from exc
    if not writer.count:
        raise Invalid("the settings produce no tasks", field="settings")
    job.tasks_total = writer.count
    job.task_types = sorted(writer.types)
    job.status = initial
    log_job(session, job, actor.name, f"submitted by {actor.name}: {plural(writer.count, 'task')}, {initial}")
    events.publish(session, "job-created", job_to_wire(job).model_dump(mode="json"))
    return job


# ---- reading -----------------------------------------------------------------------------------


def get(session: Session, job_id: int, *, for_update: bool = False) -> JobRow:
    stmt = select(JobRow).where(JobRow.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    job = session.scalar(stmt)
    if job is None:
        raise NotFound(f"no job with id {job_id}", field="id")
    return job


def _settings_size(settings: Any) -> int:
    try:
        return len(orjson.dumps(settings))
    except TypeError:  # an integer past 64 bits, stored before settings refused them: the list was a 500
        return len(json.dumps(settings))


def list_jobs(
    session: Session,
    *,
    status: list[JobStatus] | None = None,
    submitter: str | None = None,
    type_: str | None = None,
    search: str | None = None,
    sort: str = "-created",
    limit: int = 50,
    cursor: str | None = None,
    max_bytes: int | None = None,
) -> tuple[list[JobRow], str | None]:
    """A page of jobs: at most `limit`, fewer when their settings pass `max_bytes` (default PAGE_SETTINGS_BYTES;
    never none while one is left), and the cursor after its last, or None at the end."""
    budget = PAGE_SETTINGS_BYTES if max_bytes is None else max_bytes
    descending = sort.startswith("-")
    key = sort.removeprefix("-")  # one minus: `--created` is no sort
    if key not in SORTABLE:
        raise Invalid(f"cannot sort by {key!r} (choose from {', '.join(SORTABLE)})", field="sort")
    col = SORTABLE[key]
    stmt = select(JobRow)
    if status:
        stmt = stmt.where(JobRow.status.in_(status))
    if submitter:
        stmt = stmt.where(JobRow.submitter == submitter)
    if type_:
        stmt = stmt.where(JobRow.type == type_)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if session.get_bind().dialect.name == "sqlite":
            stmt = stmt.where(getattr(func, UNICODE_LOWER)(JobRow.name).like(pattern.lower(), escape="\\"))
        else:
            stmt = stmt.where(JobRow.name.ilike(pattern, escape="\\"))
    if cursor:
        value, last_id = paging.decode(cursor, col)
        after = tuple_(col, JobRow.id) < tuple_(value, last_id)
        before = tuple_(col, JobRow.id) > tuple_(value, last_id)
        stmt = stmt.where(after if descending else before)
    order = (col.desc(), JobRow.id.desc()) if descending else (col.asc(), JobRow.id.asc())
    # a job's settings may be up to 256 KiB: a page of a thousand such jobs would be loaded and sent whole, so
    # rows are read a few at a time and the page ends, with its cursor, once their settings reach the budget
    rows: list[JobRow] = []
    size = 0
    more = False
    result = session.scalars(stmt.order_by(*order).limit(limit + 1).execution_options(yield_per=100))
    try:
        for row in result:
            size += _settings_size(row.settings)
            if len(rows) == limit or (rows and size > budget):
                more = True
                break
            rows.append(row)
    finally:
        result.close()
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = paging.encode(getattr(last, key), last.id)
    return rows, next_cursor


def list_tasks(
    session: Session,
    job_id: int,
    *,
    status: list[TaskStatus] | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[TaskRow], str | None]:
    get(session, job_id)
    stmt = select(TaskRow).where(TaskRow.job_id == job_id)
    if status:
        stmt = stmt.where(TaskRow.status.in_(status))
    if cursor:
        index, _ = paging.decode(cursor, TaskRow.index)
        stmt = stmt.where(TaskRow.index > index)
    rows = list(session.scalars(stmt.order_by(TaskRow.index).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = paging.encode(rows[-1].index, rows[-1].id)
    return rows, next_cursor


def job_log(session: Session, job_id: int, limit: int = 1000) -> list[JobLogRow]:
    rows = session.scalars(
        select(JobLogRow).where(JobLogRow.job_id == job_id).order_by(JobLogRow.id.desc()).limit(limit)
    )
    return list(reversed(list(rows)))


# ---- changing ----------------------------------------------------------------------------------


def check_may_manage(job: JobRow, actor: Actor) -> None:
    if actor.role == Role.ARTIST and job.submitter != actor.name:
        raise Forbidden(f"job {job.id} belongs to {job.submitter}; artists manage only their own jobs", field="job_id")


def apply_action(session: Session, job: JobRow, action: JobAction, actor: Actor, reason: str = "") -> None:
    check_may_manage(job, actor)
    status = JobStatus(job.status)
    try:
        job_states.check_action(action, status)
    except job_states.IllegalJobAction as exc:
        raise Conflict(str(exc), field="action") from exc
    who = actor.name
    why = f" ({reason})" if reason else ""
    if action == JobAction.PAUSE:
        running = stop_unfinished(session, job, to=TaskStatus.PAUSED, actor=who)
        set_job_status(
            session, job, JobStatus.PAUSE_REQUESTED if running else JobStatus.PAUSED, actor=who, reason=reason
        )
        job.activity = still_running(JobStatus.PAUSE_REQUESTED, running) if running else f"paused by {who}{why}"
    elif action == JobAction.RESUME:
        requeue_where(session, job, [TaskStatus.PAUSED], actor=who, resume=True)
        target = JobStatus.ACTIVE if job.tasks_active or job.tasks_completed else JobStatus.QUEUED
        set_job_status(session, job, target, actor=who, reason=f"resumed{why}")
        job.activity = f"resumed by {who}"
        follow_job(session, job, actor=who)  # nothing left to run (a job paused before this was followed): it ends
    elif action == JobAction.CANCEL and status == JobStatus.UNDER_CONSTRUCTION:
        # Not kept, canceled, with part of its tasks: its writer (here, at another Server, or none: killed) stops
        # at its next chunk and removes it, or the orphan sweep does.
        log_job(session, job, who, f"canceled by {who} while its tasks were being stored{why}: it is removed")
        job.activity = orphans.CANCELED_UNBUILT
    elif action == JobAction.CANCEL:
        running = stop_unfinished(session, job, to=TaskStatus.CANCELED, actor=who)
        set_job_status(
            session, job, JobStatus.CANCEL_REQUESTED if running else JobStatus.CANCELED, actor=who, reason=reason
        )
        job.activity = still_running(JobStatus.CANCEL_REQUESTED, running) if running else f"canceled by {who}{why}"
    elif action in (JobAction.REQUEUE, JobAction.REQUEUE_FAILED):
        if action == JobAction.REQUEUE and status == JobStatus.COMPLETED:
            which = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.PAUSED]
        elif action == JobAction.REQUEUE:
            which = [TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.PAUSED]
        else:
            which = [TaskStatus.FAILED, TaskStatus.CANCELED]
        if action == JobAction.REQUEUE_FAILED and status == JobStatus.PAUSED:
            # The job stays paused: its failed and canceled tasks are requeued (failure counts reset) and paused
            # with the rest, so a resume runs them all. Moving it to queued would leave a queued job whose other
            # tasks are paused (all of them, often), which nothing claims and neither resume nor requeue accepts.
            n = requeue_where(session, job, which, actor=who)
            if n:
                stop_unfinished(session, job, to=TaskStatus.PAUSED, actor=who)
                give_workers_another_chance(session, job)
                log_job(
                    session, job, who, f"{n} failed or canceled tasks requeued as paused; the job stays paused{why}"
                )
            job.activity = f"{plural(n, 'task')} requeued (paused) by {who}"
            events.mark_job_dirty(session, job)
            return
        if status in FINISHED_JOB_STATUSES or status == JobStatus.PAUSED:
            set_job_status(session, job, JobStatus.REQUEUEING, actor=who, reason=reason)
        n = requeue_where(session, job, which, actor=who)
        if n:
            give_workers_another_chance(session, job)  # a requeue usually follows a fix
        if job.status == JobStatus.REQUEUEING:
            set_job_status(session, job, JobStatus.QUEUED, actor=who, reason=f"{plural(n, 'task')} requeued")
        job.activity = f"{plural(n, 'task')} requeued by {who}"
    events.mark_job_dirty(session, job)


def set_priority(session: Session, job: JobRow, priority: int, actor: Actor) -> None:
    check_may_manage(job, actor)
    if job.priority == priority:
        return
    log_job(session, job, actor.name, f"priority {job.priority} → {priority}")
    job.priority = priority
    job.updated = utcnow()
    events.mark_job_dirty(session, job)
    # Managers already holding tasks of the job reorder them (the answer to their next update batch says so)
    holders = session.scalars(
        select(TaskRow.manager_id)
        .where(TaskRow.job_id == job.id, TaskRow.status.in_(list(HELD_STATUSES)), TaskRow.manager_id.is_not(None))
        .distinct()
    ).all()
    for manager_id in holders:
        if manager_id is not None:
            instruct(session, manager_id, "reprioritize", [job.id])


def waiting_on(session: Session) -> dict[int, list[int]]:
    """{job id: the unfinished jobs that wait for it}: one query for a whole request (a bulk delete of thousands),
    reading only the jobs with dependencies (most have none: `[]`, left out by the database)."""
    rows = session.execute(
        select(JobRow.id, JobRow.depends_on).where(
            JobRow.status.not_in([s.value for s in FINISHED_JOB_STATUSES]), cast(JobRow.depends_on, Text) != "[]"
        )
    ).all()
    waiting: dict[int, list[int]] = {}
    for job_id, deps in rows:
        for dep in deps or []:
            waiting.setdefault(dep, []).append(job_id)
    return waiting


def hold_waiting(session: Session, job: JobRow, deleted_id: int, actor: Actor, why_not: str) -> None:
    """`job` waits for job `deleted_id`, which `actor` deletes without being allowed to let `job` run (`why_not`):
    it is paused (one paused already stays so), and its log says why and what its owner may do. One still being
    stored (a big submission) cannot be paused yet: Conflict, to be tried again once it is stored."""
    if JobStatus(job.status) == JobStatus.UNDER_CONSTRUCTION:
        raise Conflict(
            f"job {job.id} waits for job {deleted_id} and is still being stored: delete it again in a moment",
            field="id",
        )
    log_job(
        session, job, actor.name,
        f"job {deleted_id}, which this job waited for, was deleted by {actor.name}, who may not let it run "
        f"({why_not}): paused; resume it to run without that job, or cancel it",
    )  # fmt: skip
    if JobStatus(job.status) in job_states.ACTION_FROM[JobAction.PAUSE]:
        # as the Server, not as `actor`: the pause is what keeps the job from running on another's word
        apply_action(session, job, JobAction.PAUSE, Actor(actor.name, Role.ADMIN), f"job {deleted_id} deleted")
    events.mark_job_dirty(session, job)


def delete_job(session: Session, job: JobRow, actor: Actor) -> None:
    check_may_manage(job, actor)
    if JobStatus(job.status) not in FINISHED_JOB_STATUSES:
        raise Conflict(
            f"job {job.id} is {job.status}; only completed, canceled or failed jobs can be deleted (cancel it first)",
            field="status",
        )
    job_id = job.id
    # dependencies first: deleting them by job keeps SQLite from a per-row cascade over the task table
    task_ids = select(TaskRow.id).where(TaskRow.job_id == job_id)
    highest_task = session.scalar(select(func.max(TaskRow.id)).where(TaskRow.job_id == job_id))
    id_floors.note_deleted(session, id_floors.TASKS, highest_task)
    id_floors.note_deleted(session, id_floors.JOBS, job_id)
    session.execute(delete(TaskDependencyRow).where(TaskDependencyRow.task_id.in_(task_ids)))
    session.execute(delete(TaskRow).where(TaskRow.job_id == job_id))
    session.execute(delete(JobLogRow).where(JobLogRow.job_id == job_id))
    session.delete(job)
    events.publish(session, "job-deleted", {"id": job_id})

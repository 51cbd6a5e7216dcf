"""Turns table rows into wire models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.protocol.common import utcnow
from services.protocol.farm import Manager, Utilisation, Worker
from services.protocol.jobs import Command, Job, JobLogEntry, OnTaskFailure, Task, TaskSummary
from services.protocol.states import (
    FINISHED_JOB_STATUSES,
    JobStatus,
    ManagerStatus,
    TaskStatus,
    Unavailability,
    WorkerStatus,
    WorkerStatusRequest,
)
from services.server.db.tables import JobLogRow, JobRow, ManagerRow, TaskRow, WorkerRow

_REASONS = frozenset(r.value for r in Unavailability)
_FINISHED = frozenset(s.value for s in FINISHED_JOB_STATUSES)


def aware(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def job_to_wire(j: JobRow) -> Job:
    return Job(
        id=j.id,
        name=j.name,
        type=j.type,
        settings=j.settings,
        priority=j.priority,
        submitter=j.submitter,
        tags=j.tags,
        manager_id=j.manager_id,
        depends_on=j.depends_on,
        max_task_failures=j.max_task_failures,
        on_task_failure=OnTaskFailure(j.on_task_failure),
        status=JobStatus(j.status),
        activity=j.activity,
        created=aware(j.created),
        updated=aware(j.updated),
        tasks_total=j.tasks_total,
        tasks_completed=j.tasks_completed,
        tasks_failed=j.tasks_failed,
        tasks_canceled=j.tasks_canceled,
        tasks_active=j.tasks_active,
        **job_times(j),
    )


def job_times(j: JobRow) -> dict[str, Any]:
    """The job's time fields, from its row alone (store/task_times.py keeps them); the ETA is added by the
    routes that answer GET (api/timing.py), as it depends on the workers."""
    now = utcnow()
    started = aware(j.started) if j.started else None
    finished = aware(j.finished) if j.finished else None
    elapsed = None
    if started is not None:
        end = finished if j.status in _FINISHED and finished is not None else now
        elapsed = max((end - started).total_seconds(), 0.0)
    return {
        "task_types": list(j.task_types or []),
        "started": started,
        "finished": finished,
        "elapsed_seconds": elapsed,
        "tasks_timed": j.tasks_timed,
        "task_seconds_mean": j.task_seconds_total / j.tasks_timed if j.tasks_timed else None,
        "task_seconds_max": j.task_seconds_max if j.tasks_timed else None,
        "tasks_running": j.tasks_running,
        "running_since_mean": (
            datetime.fromtimestamp(j.running_since_total / j.tasks_running, UTC) if j.tasks_running > 0 else None
        ),
    }


def task_summary(t: TaskRow) -> TaskSummary:
    return TaskSummary(
        id=t.id,
        job_id=t.job_id,
        index=t.index,
        name=t.name,
        type=t.type,
        status=TaskStatus(t.status),
        attempt=t.attempt,
        failure_count=t.failure_count,
        manager_id=t.manager_id,
        worker_id=t.worker_id,
        worker_name=t.worker_name,
        activity=t.activity,
        steps_done=t.steps_done,
        steps_total=t.steps_total,
        updated=aware(t.updated),
        started=aware(t.started) if t.started else None,
        finished=aware(t.finished) if t.finished else None,
        render_seconds=t.render_seconds,
    )


def task_to_wire(t: TaskRow, depends_on: list[int]) -> Task:
    return Task(
        **task_summary(t).model_dump(),
        commands=[Command.model_validate(c) for c in t.commands],
        depends_on=depends_on,
        log_tail=t.log_tail,
        created=aware(t.created),
    )


def log_entry(r: JobLogRow) -> JobLogEntry:
    return JobLogEntry(time=aware(r.time), user=r.user, message=r.message)


def worker_to_wire(w: WorkerRow) -> Worker:
    return Worker(
        id=w.id,
        name=w.name,
        manager_id=w.manager_id,
        platform=w.platform,
        task_types=w.task_types,
        tags=w.tags,
        software=w.software,
        status=WorkerStatus(w.status),
        status_requested=WorkerStatusRequest(w.status_requested) if w.status_requested else None,
        current_task_id=w.current_task_id,
        last_seen=aware(w.last_seen) if w.last_seen else None,
        utilisation=Utilisation.model_validate(w.utilisation) if w.utilisation else None,
        unavailable=Unavailability(w.unavailable) if w.unavailable in _REASONS else None,
    )


def manager_to_wire(m: ManagerRow, status: ManagerStatus, workers_total: int, workers_awake: int) -> Manager:
    return Manager(
        id=m.id,
        name=m.name,
        status=status,
        last_seen=aware(m.last_seen) if m.last_seen else None,
        created=aware(m.created),
        workers_total=workers_total,
        workers_awake=workers_awake,
    )

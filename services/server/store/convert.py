"""Turns table rows into wire models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.protocol import timing
from services.protocol.common import utcnow
from services.protocol.farm import Manager, Utilisation, Worker
from services.protocol.host_requirements import HostCapabilities
from services.protocol.jobs import Command, Job, JobLogEntry, OnTaskFailure, Task, TaskSummary
from services.protocol.states import (
    FINISHED_JOB_STATUSES,
    RUNNABLE_JOB_STATUSES,
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
_RUNNABLE = frozenset(s.value for s in RUNNABLE_JOB_STATUSES)


def aware(t: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def job_to_wire(j: JobRow, workers: int | None = None) -> Job:
    """The job as answers and events carry it; with `workers` (that can run it), with its ETA too."""
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
        **job_times(j, workers),
    )


def job_times(j: JobRow, workers: int | None) -> dict[str, Any]:
    """The job's time fields, from its row alone (store/task_times.py keeps them up to date), and with `workers`
    the ETA (services/protocol/timing.py), which the routes answering GET add (store.task_times.worker_counts).
    Each column is read once: this runs for every job of a list."""
    started, finished, timed, running, status = j.started, j.finished, j.tasks_timed, j.tasks_running, j.status
    out: dict[str, Any] = {
        "task_types": j.task_types or [],
        "tasks_timed": timed,
        "tasks_running": running,
        "eta_workers": workers,
    }
    if started is None and not timed and not running:
        return out  # not started: no figure to give (most jobs of a long queue)
    now = utcnow()
    total_seconds = j.task_seconds_total
    mean = total_seconds / timed if timed else None
    since_total = j.running_since_total
    if started is not None:
        started = aware(started)
        out["started"] = started
        end = now
        if finished is not None:
            out["finished"] = finished = aware(finished)
            if status in _FINISHED:
                end = finished
        out["elapsed_seconds"] = max((end - started).total_seconds(), 0.0)
    if timed:
        out["task_seconds_mean"] = mean
        out["task_seconds_max"] = j.task_seconds_max
    if running > 0:
        out["running_since_mean"] = datetime.fromtimestamp(since_total / running, UTC)
    if workers is not None and status in _RUNNABLE:
        eta = timing.estimate(
            left=j.tasks_total - j.tasks_completed - j.tasks_failed - j.tasks_canceled,
            running=running,
            running_elapsed=max(running * now.timestamp() - since_total, 0.0),
            mean=mean,
            workers=workers,
        )
        if eta is not None:
            out["eta_seconds"] = eta
            out["eta"] = now + timedelta(seconds=eta)
    return out


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
        capabilities=HostCapabilities.model_validate(w.capabilities) if w.capabilities else None,
        next_task_id=w.next_task_id,
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
        client_url=m.client_url,
        variables=m.variables,
    )

"""Column definitions and colours of the jobs, tasks, workers and managers tables."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from app.job_info import duration
from app.models.store import ClientStore, TaskRow
from app.models.table import Column
from app.qt import QColor
from services.protocol import timing
from services.protocol.farm import Manager, Worker
from services.protocol.jobs import Job

STATUS_COLOURS: dict[str, str] = {
    "under-construction": "#8a8a8a",
    "queued": "#5b7fa6",
    "assigned": "#6f8fb8",
    "active": "#2e8bd6",
    "pause-requested": "#c28a1a",
    "paused": "#b07d12",
    "cancel-requested": "#a05a5a",
    "canceled": "#7d6060",
    "requeueing": "#6f8fb8",
    "completed": "#2f9e44",
    "soft-failed": "#d9822b",
    "failed": "#d63a3a",
    "starting": "#6f8fb8",
    "awake": "#2f9e44",
    "asleep": "#8a7fb8",
    "offline": "#8a8a8a",
    "error": "#d63a3a",
    "never-seen": "#8a8a8a",
    "online": "#2f9e44",
}
_colour_cache: dict[str, QColor] = {}


def status_colour(status: str) -> QColor:
    c = _colour_cache.get(status)
    if c is None:
        c = _colour_cache[status] = QColor(STATUS_COLOURS.get(status, "#444444"))
    return c


def fmt_time(t: datetime | None) -> str:
    return "" if t is None else t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@functools.lru_cache(maxsize=4096)
def fmt_iso(s: str) -> str:
    """An ISO time string (the Server's, in UTC) as the tables show it: in local time, as the jobs' times are (the
    tasks' were shown in UTC beside them, an audit). Only shown cells are formatted, and repeats are remembered."""
    try:
        return datetime.fromisoformat(s).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return s[:19].replace("T", " ")


def job_columns(store: ClientStore | None = None) -> list[Column]:
    return [
        Column("Name", lambda j: j.name),
        Column("Status", lambda j: j.status.value, foreground=lambda j: status_colour(j.status.value)),
        Column(
            "Progress",
            lambda j: f"{j.tasks_completed}/{j.tasks_total}",
            sort=lambda j: j.progress,
            progress=lambda j: j.progress,
        ),
        Column("Priority", lambda j: j.priority, align_right=True),
        Column("Type", lambda j: j.type),
        Column("Submitter", lambda j: j.submitter),
        Column("Created", lambda j: fmt_time(j.created), sort=lambda j: j.created.isoformat()),
        Column("Updated", lambda j: fmt_time(j.updated), sort=lambda j: j.updated.isoformat()),
        Column("Activity", lambda j: j.activity),
        Column("ID", lambda j: j.id, align_right=True),
        # last, so the columns before keep their places; these move with the clock (JobsModel ticks them)
        *job_time_columns(store),
    ]


TIME_COLUMNS = ("Elapsed", "ETA", "Mean task", "Longest task")


def job_time_columns(store: ClientStore | None) -> list[Column]:
    def eta(j: Job) -> float | None:
        workers = store.workers.values() if store is not None else []
        return timing.job_estimate(j, timing.usable_workers(j, workers), datetime.now(UTC))

    def elapsed(j: Job) -> float | None:
        return timing.elapsed(j, datetime.now(UTC))

    def none_last(value: float | None) -> float:
        return float("inf") if value is None else value

    return [
        Column("Elapsed", lambda j: duration(elapsed(j)), sort=lambda j: none_last(elapsed(j)), align_right=True),
        Column("ETA", lambda j: duration(eta(j)), sort=lambda j: none_last(eta(j)), align_right=True),
        Column(
            "Mean task",
            lambda j: duration(j.task_seconds_mean),
            sort=lambda j: none_last(j.task_seconds_mean),
            align_right=True,
        ),
        Column(
            "Longest task",
            lambda j: duration(j.task_seconds_max),
            sort=lambda j: none_last(j.task_seconds_max),
            align_right=True,
        ),
    ]


def job_status(j: Job) -> str:
    return j.status.value


def _task_progress(t: TaskRow) -> float:
    return t.steps_done / t.steps_total if t.steps_total else (1.0 if t.status == "completed" else 0.0)


def task_columns() -> list[Column]:
    return [
        Column("#", lambda t: t.index, align_right=True),
        Column("Name", lambda t: t.name),
        Column("Status", lambda t: t.status, foreground=lambda t: status_colour(t.status)),
        Column(
            "Progress",
            lambda t: f"{t.steps_done}/{t.steps_total}",
            sort=_task_progress,
            progress=_task_progress,
        ),
        Column("Worker", lambda t: t.worker_name or ""),
        Column("Attempt", lambda t: t.attempt, align_right=True),
        Column("Failures", lambda t: t.failure_count, align_right=True),
        Column("Type", lambda t: t.type),
        Column("Activity", lambda t: t.activity),
        Column("Updated", lambda t: fmt_iso(t.updated), sort=lambda t: t.updated),
        Column("ID", lambda t: t.id, align_right=True),
        Column("Started", lambda t: fmt_iso(t.started) if t.started else "", sort=lambda t: t.started or ""),
        Column("Ended", lambda t: fmt_iso(t.finished) if t.finished else "", sort=lambda t: t.finished or ""),
        Column(
            "Render time",
            lambda t: duration(t.render_seconds),
            sort=lambda t: -1.0 if t.render_seconds is None else t.render_seconds,
            align_right=True,
        ),
    ]


def task_status(t: TaskRow) -> str:
    return t.status


def worker_columns(store: ClientStore) -> list[Column]:
    def manager_name(w: Worker) -> str:
        m = store.managers.get(w.manager_id)
        return m.name if m else str(w.manager_id)

    def cpu(w: Worker) -> str:
        return "" if w.utilisation is None else f"{w.utilisation.cpu_percent:.0f}%"

    def mem(w: Worker) -> str:
        return "" if w.utilisation is None else f"{w.utilisation.memory_percent:.0f}%"

    return [
        Column("Name", lambda w: w.name),
        Column(
            "Status",
            lambda w: w.status.value + (f" → {w.status_requested.value}" if w.status_requested else ""),
            foreground=lambda w: status_colour(w.status.value),
        ),
        Column("Current task", lambda w: "" if w.current_task_id is None else w.current_task_id),
        Column("Manager", manager_name),
        Column("Tags", lambda w: ", ".join(w.tags)),
        Column("Platform", lambda w: w.platform),
        Column("CPU", cpu, sort=lambda w: w.utilisation.cpu_percent if w.utilisation else -1.0),
        Column("Memory", mem, sort=lambda w: w.utilisation.memory_percent if w.utilisation else -1.0),
        Column("Last seen", lambda w: fmt_time(w.last_seen), sort=lambda w: fmt_time(w.last_seen)),
        # last, so the columns before keep their places
        Column("Unavailable", unavailable_text),
    ]


# short: the column is narrow; the tooltip-free table shows why a worker takes no work at a glance
UNAVAILABLE_TEXT = {
    "paused-by-user": "paused by user",
    "user-active": "user at desk",
    "outside-hours": "outside hours",
    "asleep": "asleep",
}


def unavailable_text(w: Worker) -> str:
    """The worker's own reason for claiming no work, in words (empty when it would take work)."""
    return "" if w.unavailable is None else UNAVAILABLE_TEXT.get(w.unavailable.value, w.unavailable.value)


def worker_status(w: Worker) -> str:
    return w.status.value


def manager_columns() -> list[Column]:
    return [
        Column("Name", lambda m: m.name),
        Column("Status", lambda m: m.status.value, foreground=lambda m: status_colour(m.status.value)),
        Column("Workers awake", lambda m: f"{m.workers_awake}/{m.workers_total}", sort=lambda m: m.workers_awake),
        Column("Last seen", lambda m: fmt_time(m.last_seen), sort=lambda m: fmt_time(m.last_seen)),
        Column("Created", lambda m: fmt_time(m.created), sort=lambda m: fmt_time(m.created)),
        Column("ID", lambda m: m.id, align_right=True),
    ]


def manager_status(m: Manager) -> str:
    return m.status.value

"""A job's time left: the estimate the Server answers with and the app recomputes as the clock and the farm move.

One function for both sides, so the app's ticking estimate and the API's agree. The inputs are figures the
Server keeps per job as tasks change (no task is read): tasks left, the mean render time of its completed
tasks, its running tasks and their mean start, and the number of workers that can run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.protocol.farm import Worker
from services.protocol.jobs import Job
from services.protocol.states import FINISHED_JOB_STATUSES, RUNNABLE_JOB_STATUSES, WorkerStatus

ETA_MAX = 100 * 365.25 * 86400  # seconds: a longer estimate is no estimate


class WorkerLike(Protocol):
    """What `fits` reads of a worker: the wire model, or a lighter row the Server reads for many at once."""

    @property
    def status(self) -> WorkerStatus: ...
    @property
    def unavailable(self) -> object | None: ...
    @property
    def manager_id(self) -> int | None: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def task_types(self) -> Sequence[str]: ...


def estimate(*, left: int, running: int, running_elapsed: float, mean: float | None, workers: int) -> float | None:
    """Seconds until the last of `left` tasks (of which `running` run, for `running_elapsed` seconds together)
    ends, when each takes `mean` seconds and `workers` run them side by side; None when it cannot be told.

    Work left = waiting tasks × mean + what the running ones still need (their mean minus their elapsed, never
    below zero), spread over min(workers, tasks left). Tasks that overrun the mean count as about to end.
    """
    if left <= 0:
        return 0.0
    if mean is None or workers <= 0:
        return None
    running = min(running, left)
    work = (left - running) * mean + max(running * mean - running_elapsed, 0.0)
    eta = work / min(workers, left)
    # past a century it is a clock gone wrong, not a job; and its date would be past the calendar's end
    return eta if 0.0 <= eta <= ETA_MAX else None


def tasks_left(job: Job) -> int:
    return job.tasks_total - job.tasks_completed - job.tasks_failed - job.tasks_canceled


def worker_can_run(job: Job, worker: Worker) -> bool:
    """The worker would take this job's tasks now: awake, available, of its Manager, with its tags and types."""
    return fits(job.manager_id, job.tags, job.task_types, worker)


def fits(manager_id: int | None, tags: Iterable[str], task_types: Iterable[str], worker: WorkerLike) -> bool:
    """`worker_can_run` for a job given by its Manager restriction, tags and task types."""
    if worker.status != WorkerStatus.AWAKE or worker.unavailable is not None:
        return False
    if manager_id is not None and worker.manager_id != manager_id:
        return False
    if not set(tags) <= set(worker.tags):
        return False
    types = set(task_types)
    return not types or bool(types & set(worker.task_types))


def usable_workers(job: Job, workers: Iterable[Worker]) -> int:
    return sum(1 for w in workers if worker_can_run(job, w))


def job_estimate(job: Job, workers: int, now: datetime) -> float | None:
    """The job's seconds left at `now` with `workers` able to run it; None when it is not running."""
    if job.status not in RUNNABLE_JOB_STATUSES:
        return None
    running_elapsed = 0.0
    if job.tasks_running and job.running_since_mean is not None:
        running_elapsed = max((now - job.running_since_mean).total_seconds(), 0.0) * job.tasks_running
    return estimate(
        left=tasks_left(job),
        running=job.tasks_running,
        running_elapsed=running_elapsed,
        mean=job.task_seconds_mean,
        workers=workers,
    )


def elapsed(job: Job, now: datetime) -> float | None:
    """Seconds from its first task's start to `now`, or to its last task's end once it has finished."""
    if job.started is None:
        return None
    end = job.finished if job.status in FINISHED_JOB_STATUSES and job.finished is not None else now
    return max((end - job.started).total_seconds(), 0.0)

"""The job state machine: what each wrangler action does from each status, and how a job follows its tasks."""

from __future__ import annotations

from dataclasses import dataclass

from services.protocol.jobs import JobAction
from services.protocol.states import JobStatus

# The statuses each action is allowed from. Anything else is refused with a 409 naming both.
ACTION_FROM: dict[JobAction, frozenset[JobStatus]] = {
    JobAction.PAUSE: frozenset({JobStatus.QUEUED, JobStatus.ACTIVE}),
    JobAction.RESUME: frozenset({JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED}),
    JobAction.CANCEL: frozenset(
        {JobStatus.QUEUED, JobStatus.ACTIVE, JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED, JobStatus.UNDER_CONSTRUCTION}
    ),
    JobAction.REQUEUE: frozenset({JobStatus.COMPLETED, JobStatus.CANCELED, JobStatus.FAILED, JobStatus.PAUSED}),
    JobAction.REQUEUE_FAILED: frozenset(
        {JobStatus.ACTIVE, JobStatus.QUEUED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.PAUSED}
    ),
}

# Every status change a job can make, by action or by following its tasks.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.UNDER_CONSTRUCTION: frozenset({JobStatus.QUEUED, JobStatus.PAUSED, JobStatus.CANCELED}),
    JobStatus.QUEUED: frozenset(
        {
            JobStatus.ACTIVE,
            JobStatus.PAUSE_REQUESTED,
            JobStatus.PAUSED,
            JobStatus.CANCEL_REQUESTED,
            JobStatus.CANCELED,
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.REQUEUEING,
        }
    ),
    JobStatus.ACTIVE: frozenset(
        {
            JobStatus.QUEUED,
            JobStatus.PAUSE_REQUESTED,
            JobStatus.PAUSED,
            JobStatus.CANCEL_REQUESTED,
            JobStatus.CANCELED,
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.REQUEUEING,
        }
    ),
    JobStatus.PAUSE_REQUESTED: frozenset(
        {
            JobStatus.PAUSED,
            JobStatus.QUEUED,
            JobStatus.ACTIVE,
            JobStatus.CANCEL_REQUESTED,
            JobStatus.CANCELED,
            JobStatus.FAILED,
            JobStatus.COMPLETED,
        }
    ),
    # completed, failed: its last tasks finished after the pause took them back (store/link.py,
    # finished_after_stop), with none left to resume (follow_tasks)
    JobStatus.PAUSED: frozenset(
        {
            JobStatus.QUEUED,
            JobStatus.ACTIVE,
            JobStatus.CANCELED,
            JobStatus.REQUEUEING,
            JobStatus.COMPLETED,
            JobStatus.FAILED,
        }
    ),
    JobStatus.CANCEL_REQUESTED: frozenset({JobStatus.CANCELED}),
    JobStatus.CANCELED: frozenset({JobStatus.REQUEUEING}),
    JobStatus.REQUEUEING: frozenset({JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset({JobStatus.REQUEUEING}),
    JobStatus.FAILED: frozenset({JobStatus.REQUEUEING}),
}


class IllegalJobAction(ValueError):
    def __init__(self, action: JobAction, status: JobStatus) -> None:
        allowed = ", ".join(sorted(ACTION_FROM[action]))
        super().__init__(f"cannot {action} a job that is {status} (only from: {allowed})")
        self.action = action
        self.status = status


class IllegalJobTransition(ValueError):
    def __init__(self, old: JobStatus, new: JobStatus) -> None:
        super().__init__(f"a job cannot go from {old} to {new}")
        self.old = old
        self.new = new


def check_action(action: JobAction, status: JobStatus) -> None:
    if status not in ACTION_FROM[action]:
        raise IllegalJobAction(action, status)


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    return old == new or new in TRANSITIONS[old]


@dataclass(frozen=True)
class TaskCounts:
    total: int
    completed: int
    failed: int  # hard-failed
    canceled: int
    running: int  # assigned, active or soft-failed (held by a Manager)


def follow_tasks(status: JobStatus, counts: TaskCounts, *, fail_on_task_failure: bool) -> JobStatus:
    """The status a job moves to after its tasks changed; unchanged when nothing follows."""
    if status == JobStatus.PAUSED:  # a run the pause took back may still complete (see TRANSITIONS)
        return _all_finished(counts) or status
    if status in (
        JobStatus.CANCELED,
        JobStatus.FAILED,
        JobStatus.COMPLETED,
        JobStatus.UNDER_CONSTRUCTION,
        JobStatus.REQUEUEING,
    ):
        return status
    if status == JobStatus.CANCEL_REQUESTED:
        return JobStatus.CANCELED if counts.running == 0 else status
    if counts.failed and fail_on_task_failure:
        return JobStatus.FAILED
    if counts.total and counts.completed == counts.total:
        return JobStatus.COMPLETED
    if (finished := _all_finished(counts)) is not None:
        return finished
    if status == JobStatus.PAUSE_REQUESTED:
        return JobStatus.PAUSED if counts.running == 0 else status
    if counts.running or counts.completed or counts.failed or counts.canceled:
        return JobStatus.ACTIVE
    return status


def _all_finished(counts: TaskCounts) -> JobStatus | None:
    """The status of a job none of whose tasks is left to run: completed when all completed, else failed if any
    failed, else canceled. None while a task is left (a paused one, a queued one). A paused job gets here too: one
    that only waited for its resume would be resumed into an active job with nothing to run, for ever."""
    if not counts.total or counts.completed + counts.failed + counts.canceled != counts.total:
        return None
    if counts.completed == counts.total:
        return JobStatus.COMPLETED
    return JobStatus.FAILED if counts.failed else JobStatus.CANCELED

"""The job state machine: what each wrangler action does from each status, and how a job follows its tasks."""

from __future__ import annotations

from dataclasses import dataclass

from services.protocol.jobs import JobAction as A
from services.protocol.states import JobStatus as J

# The statuses each action is allowed from. Anything else is refused with a 409 naming both.
ACTION_FROM: dict[A, frozenset[J]] = {
    A.PAUSE: frozenset({J.QUEUED, J.ACTIVE}),
    A.RESUME: frozenset({J.PAUSED, J.PAUSE_REQUESTED}),
    A.CANCEL: frozenset({J.QUEUED, J.ACTIVE, J.PAUSED, J.PAUSE_REQUESTED, J.UNDER_CONSTRUCTION}),
    A.REQUEUE: frozenset({J.COMPLETED, J.CANCELED, J.FAILED, J.PAUSED}),
    A.REQUEUE_FAILED: frozenset({J.ACTIVE, J.QUEUED, J.FAILED, J.CANCELED, J.PAUSED}),
}

# Every status change a job can make, by action or by following its tasks.
TRANSITIONS: dict[J, frozenset[J]] = {
    J.UNDER_CONSTRUCTION: frozenset({J.QUEUED, J.PAUSED, J.CANCELED}),
    J.QUEUED: frozenset(
        {J.ACTIVE, J.PAUSE_REQUESTED, J.PAUSED, J.CANCEL_REQUESTED, J.CANCELED, J.COMPLETED, J.FAILED, J.REQUEUEING}
    ),
    J.ACTIVE: frozenset(
        {
            J.QUEUED,
            J.PAUSE_REQUESTED,
            J.PAUSED,
            J.CANCEL_REQUESTED,
            J.CANCELED,
            J.COMPLETED,
            J.FAILED,
            J.REQUEUEING,
        }
    ),
    J.PAUSE_REQUESTED: frozenset({J.PAUSED, J.QUEUED, J.ACTIVE, J.CANCEL_REQUESTED, J.CANCELED, J.FAILED, J.COMPLETED}),
    J.PAUSED: frozenset({J.QUEUED, J.ACTIVE, J.CANCELED, J.REQUEUEING}),
    J.CANCEL_REQUESTED: frozenset({J.CANCELED}),
    J.CANCELED: frozenset({J.REQUEUEING}),
    J.REQUEUEING: frozenset({J.QUEUED}),
    J.COMPLETED: frozenset({J.REQUEUEING}),
    J.FAILED: frozenset({J.REQUEUEING}),
}


class IllegalJobAction(ValueError):
    def __init__(self, action: A, status: J) -> None:
        allowed = ", ".join(sorted(ACTION_FROM[action]))
        super().__init__(f"cannot {action} a job that is {status} (only from: {allowed})")
        self.action = action
        self.status = status


class IllegalJobTransition(ValueError):
    def __init__(self, old: J, new: J) -> None:
        super().__init__(f"a job cannot go from {old} to {new}")
        self.old = old
        self.new = new


def check_action(action: A, status: J) -> None:
    if status not in ACTION_FROM[action]:
        raise IllegalJobAction(action, status)


def can_transition(old: J, new: J) -> bool:
    return old == new or new in TRANSITIONS[old]


@dataclass(frozen=True)
class TaskCounts:
    total: int
    completed: int
    failed: int  # hard-failed
    canceled: int
    running: int  # assigned, active or soft-failed (held by a Manager)


def follow_tasks(status: J, counts: TaskCounts, *, fail_on_task_failure: bool) -> J:
    """The status a job moves to after its tasks changed; unchanged when nothing follows."""
    if status in (J.CANCELED, J.FAILED, J.COMPLETED, J.PAUSED, J.UNDER_CONSTRUCTION, J.REQUEUEING):
        return status
    if status == J.CANCEL_REQUESTED:
        return J.CANCELED if counts.running == 0 else status
    if counts.failed and fail_on_task_failure:
        return J.FAILED
    if counts.total and counts.completed == counts.total:
        return J.COMPLETED
    if status == J.PAUSE_REQUESTED:
        return J.PAUSED if counts.running == 0 else status
    if counts.total and counts.completed + counts.failed + counts.canceled == counts.total:
        # every task finished but not all completed: failed if any failed, else canceled
        return J.FAILED if counts.failed else J.CANCELED
    if counts.running or counts.completed or counts.failed or counts.canceled:
        return J.ACTIVE
    return status

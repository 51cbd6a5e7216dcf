"""The task state machine: which status may follow which, as a table."""

from __future__ import annotations

from services.protocol.states import TaskStatus

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    # queued → assigned when a Manager claims it; completed: as paused → completed, when the resume came first
    TaskStatus.QUEUED: frozenset({TaskStatus.ASSIGNED, TaskStatus.PAUSED, TaskStatus.CANCELED, TaskStatus.COMPLETED}),
    # assigned → queued when the Manager gives it back or its lease expires
    TaskStatus.ASSIGNED: frozenset(
        {
            TaskStatus.ACTIVE,
            TaskStatus.COMPLETED,
            TaskStatus.SOFT_FAILED,
            TaskStatus.FAILED,
            TaskStatus.QUEUED,
            TaskStatus.PAUSED,
            TaskStatus.CANCELED,
        }
    ),
    TaskStatus.ACTIVE: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.SOFT_FAILED, TaskStatus.FAILED, TaskStatus.QUEUED, TaskStatus.CANCELED}
    ),
    # soft-failed: still held by its Manager, which retries it on another worker
    TaskStatus.SOFT_FAILED: frozenset(
        {
            TaskStatus.ASSIGNED,
            TaskStatus.ACTIVE,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.QUEUED,
            TaskStatus.PAUSED,
            TaskStatus.CANCELED,
        }
    ),
    TaskStatus.COMPLETED: frozenset({TaskStatus.QUEUED}),  # requeue
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED}),  # requeue
    # requeue; completed: a run the cancel took back finished before its Manager heard of the cancel (a Manager
    # down at the time reports it when back): its output exists, and a requeue of the job need not render it again
    TaskStatus.CANCELED: frozenset({TaskStatus.QUEUED, TaskStatus.COMPLETED}),
    # resume, cancel; completed: a run the pause took back finished before its Manager heard of the pause (the
    # same attempt: no one has had the task since, see store/link.py)
    TaskStatus.PAUSED: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELED, TaskStatus.COMPLETED}),
}

# statuses in which a Manager holds the task and reports on it
HELD = frozenset({TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED})
# statuses a wrangler may requeue from, task by task
REQUEUEABLE = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.PAUSED, TaskStatus.SOFT_FAILED}
)
CANCELABLE = frozenset(
    {TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED, TaskStatus.PAUSED}
)


class IllegalTaskTransition(ValueError):
    def __init__(self, old: TaskStatus, new: TaskStatus) -> None:
        super().__init__(f"a task cannot go from {old} to {new}")
        self.old = old
        self.new = new


def can_transition(old: TaskStatus, new: TaskStatus) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: TaskStatus, new: TaskStatus) -> None:
    if not can_transition(old, new):
        raise IllegalTaskTransition(old, new)

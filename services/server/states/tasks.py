"""The task state machine: which status may follow which, as a table."""

from __future__ import annotations

from services.protocol.states import TaskStatus as T

TRANSITIONS: dict[T, frozenset[T]] = {
    # queued → assigned when a Manager claims it
    T.QUEUED: frozenset({T.ASSIGNED, T.PAUSED, T.CANCELED}),
    # assigned → queued when the Manager gives it back or its lease expires
    T.ASSIGNED: frozenset({T.ACTIVE, T.COMPLETED, T.SOFT_FAILED, T.FAILED, T.QUEUED, T.PAUSED, T.CANCELED}),
    T.ACTIVE: frozenset({T.COMPLETED, T.SOFT_FAILED, T.FAILED, T.QUEUED, T.CANCELED}),
    # soft-failed: still held by its Manager, which retries it on another worker
    T.SOFT_FAILED: frozenset({T.ASSIGNED, T.ACTIVE, T.COMPLETED, T.FAILED, T.QUEUED, T.PAUSED, T.CANCELED}),
    T.COMPLETED: frozenset({T.QUEUED}),  # requeue
    T.FAILED: frozenset({T.QUEUED}),  # requeue
    T.CANCELED: frozenset({T.QUEUED}),  # requeue
    T.PAUSED: frozenset({T.QUEUED, T.CANCELED}),  # resume, cancel
}

# statuses in which a Manager holds the task and reports on it
HELD = frozenset({T.ASSIGNED, T.ACTIVE, T.SOFT_FAILED})
# statuses a wrangler may requeue from, task by task
REQUEUEABLE = frozenset({T.COMPLETED, T.FAILED, T.CANCELED, T.PAUSED, T.SOFT_FAILED})
CANCELABLE = frozenset({T.QUEUED, T.ASSIGNED, T.ACTIVE, T.SOFT_FAILED, T.PAUSED})


class IllegalTaskTransition(ValueError):
    def __init__(self, old: T, new: T) -> None:
        super().__init__(f"a task cannot go from {old} to {new}")
        self.old = old
        self.new = new


def can_transition(old: T, new: T) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: T, new: T) -> None:
    if not can_transition(old, new):
        raise IllegalTaskTransition(old, new)

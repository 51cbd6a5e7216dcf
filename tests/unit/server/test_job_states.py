"""The job state machine: which wrangler action is allowed from which status, and how a job follows its tasks."""

from __future__ import annotations

import itertools

import pytest

from services.protocol.jobs import JobAction as A
from services.protocol.states import JobStatus as J
from services.server.states.jobs import (
    ACTION_FROM,
    TRANSITIONS,
    IllegalJobAction,
    TaskCounts,
    can_transition,
    check_action,
    follow_tasks,
)

ALLOWED_ACTIONS = {
    A.PAUSE: {J.QUEUED, J.ACTIVE},
    A.RESUME: {J.PAUSED, J.PAUSE_REQUESTED},
    A.CANCEL: {J.QUEUED, J.ACTIVE, J.PAUSED, J.PAUSE_REQUESTED, J.UNDER_CONSTRUCTION},
    A.REQUEUE: {J.COMPLETED, J.CANCELED, J.FAILED, J.PAUSED},
    A.REQUEUE_FAILED: {J.ACTIVE, J.QUEUED, J.FAILED, J.CANCELED, J.PAUSED},
}


@pytest.mark.parametrize(("action", "status"), list(itertools.product(A, J)))
def test_actions(action: A, status: J) -> None:
    if status in ALLOWED_ACTIONS[action]:
        check_action(action, status)
    else:
        with pytest.raises(IllegalJobAction, match=f"cannot {action} a job that is {status}"):
            check_action(action, status)


def test_every_action_target_is_a_legal_transition() -> None:
    # what store.jobs.apply_action moves a job to, from each allowed status
    targets = {
        A.PAUSE: {J.PAUSE_REQUESTED, J.PAUSED},
        A.RESUME: {J.QUEUED, J.ACTIVE},
        A.CANCEL: {J.CANCEL_REQUESTED, J.CANCELED},
    }
    for action, froms in ACTION_FROM.items():
        for status in froms:
            for target in targets.get(action, {J.REQUEUEING}):
                if action in (A.REQUEUE, A.REQUEUE_FAILED) and status in (J.ACTIVE, J.QUEUED):
                    continue  # requeueing failed tasks of a running job leaves its status alone
                if target == J.CANCEL_REQUESTED and status in (J.UNDER_CONSTRUCTION, J.PAUSED):
                    continue  # no task runs in these, so a cancel is immediate
                assert can_transition(status, target), (action, status, target)
    assert can_transition(J.REQUEUEING, J.QUEUED)


def test_finished_jobs_only_requeue() -> None:
    for finished in (J.COMPLETED, J.CANCELED, J.FAILED):
        assert TRANSITIONS[finished] == {J.REQUEUEING}


def counts(total: int = 4, completed: int = 0, failed: int = 0, canceled: int = 0, running: int = 0) -> TaskCounts:
    return TaskCounts(total=total, completed=completed, failed=failed, canceled=canceled, running=running)


@pytest.mark.parametrize(
    ("status", "c", "fail_job", "expected"),
    [
        (J.QUEUED, counts(), True, J.QUEUED),
        (J.QUEUED, counts(running=1), True, J.ACTIVE),
        (J.ACTIVE, counts(completed=2, running=1), True, J.ACTIVE),
        (J.ACTIVE, counts(completed=4), True, J.COMPLETED),
        (J.ACTIVE, counts(completed=1, failed=1, running=1), True, J.FAILED),
        (J.ACTIVE, counts(completed=1, failed=1, running=1), False, J.ACTIVE),
        (J.ACTIVE, counts(completed=3, failed=1), False, J.FAILED),
        (J.ACTIVE, counts(completed=3, canceled=1), False, J.CANCELED),
        (J.PAUSE_REQUESTED, counts(completed=1, running=1), True, J.PAUSE_REQUESTED),
        (J.PAUSE_REQUESTED, counts(completed=2), True, J.PAUSED),
        (J.PAUSE_REQUESTED, counts(completed=4), True, J.COMPLETED),
        (J.CANCEL_REQUESTED, counts(running=2), True, J.CANCEL_REQUESTED),
        (J.CANCEL_REQUESTED, counts(completed=1), True, J.CANCELED),
        (J.PAUSED, counts(completed=1), True, J.PAUSED),
        (J.PAUSED, counts(completed=2, canceled=1), True, J.PAUSED),
        # its last runs completed after the pause took them back: nothing is left to resume (a resume made an active
        # job with nothing to run, for ever)
        (J.PAUSED, counts(completed=4), True, J.COMPLETED),
        (J.PAUSED, counts(completed=3, canceled=1), True, J.CANCELED),
        (J.PAUSED, counts(completed=3, failed=1), False, J.FAILED),
        (J.PAUSE_REQUESTED, counts(completed=3, failed=1), False, J.FAILED),
        (J.CANCELED, counts(completed=4), True, J.CANCELED),
        (J.COMPLETED, counts(completed=4), True, J.COMPLETED),
    ],
)
def test_job_follows_tasks(status: J, c: TaskCounts, fail_job: bool, expected: J) -> None:
    result = follow_tasks(status, c, fail_on_task_failure=fail_job)
    assert result == expected
    assert can_transition(status, result)

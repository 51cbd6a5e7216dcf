"""Every task status change the table allows or refuses, checked exhaustively."""

from __future__ import annotations

import itertools

import pytest

from services.protocol.states import TaskStatus as T
from services.server.states.tasks import IllegalTaskTransition, can_transition, check_transition

ALLOWED = {
    (T.QUEUED, T.ASSIGNED), (T.QUEUED, T.PAUSED), (T.QUEUED, T.CANCELED), (T.QUEUED, T.COMPLETED),
    (T.ASSIGNED, T.ACTIVE), (T.ASSIGNED, T.COMPLETED), (T.ASSIGNED, T.SOFT_FAILED), (T.ASSIGNED, T.FAILED),
    (T.ASSIGNED, T.QUEUED), (T.ASSIGNED, T.PAUSED), (T.ASSIGNED, T.CANCELED),
    (T.ACTIVE, T.COMPLETED), (T.ACTIVE, T.SOFT_FAILED), (T.ACTIVE, T.FAILED), (T.ACTIVE, T.QUEUED),
    (T.ACTIVE, T.CANCELED),
    (T.SOFT_FAILED, T.ASSIGNED), (T.SOFT_FAILED, T.ACTIVE), (T.SOFT_FAILED, T.COMPLETED),
    (T.SOFT_FAILED, T.FAILED), (T.SOFT_FAILED, T.QUEUED), (T.SOFT_FAILED, T.PAUSED), (T.SOFT_FAILED, T.CANCELED),
    (T.COMPLETED, T.QUEUED), (T.FAILED, T.QUEUED), (T.CANCELED, T.QUEUED), (T.CANCELED, T.COMPLETED),
    (T.PAUSED, T.QUEUED), (T.PAUSED, T.CANCELED), (T.PAUSED, T.COMPLETED),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), list(itertools.permutations(T, 2)))
def test_transition_table(old: T, new: T) -> None:
    expected = (old, new) in ALLOWED
    assert can_transition(old, new) is expected
    if expected:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalTaskTransition, match=f"from {old} to {new}"):
            check_transition(old, new)


def test_finished_tasks_only_go_back_to_the_queue() -> None:
    """A canceled one may also complete: a run the cancel took back finished before its Manager heard of it."""
    for finished in (T.COMPLETED, T.FAILED):
        assert [s for s in T if can_transition(finished, s)] == [T.QUEUED]
    assert {s for s in T if can_transition(T.CANCELED, s)} == {T.QUEUED, T.COMPLETED}

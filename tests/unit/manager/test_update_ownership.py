"""Whose task a batch of repeats may name: never another worker's, whatever the seqs.

Repeats (seq <= the worker's last) change nothing, but the answer still says whether the task is another
worker's (409, as for new updates); a task the worker holds, or one no worker holds any more (finished, given
back: what a repeat whose answer was lost finds), is acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from services.manager import task_updates
from services.manager.core import ManagerCore
from services.manager.errors import Conflict
from services.manager.model import WorkerState
from services.manager.store import logs
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate
from tests.unit.manager.test_core import claimed, make_core, report, sent, take, worker


def batch(w: WorkerState, handout: int, *statuses: str, first: int | None = None) -> list[WorkerTaskUpdate]:
    """Updates with the worker's next seqs (or from `first`), one per status, each with a log line."""
    start = w.last_seq + 1 if first is None else first
    return [
        WorkerTaskUpdate(seq=start + i, handout=handout, status=TaskStatus(s), log_lines=[f"{w.name} {s}"])
        for i, s in enumerate(statuses)
    ]


def log_text(core: ManagerCore, task_id: int) -> str:
    return json.dumps(logs.read_chunks(core.conn, task_id))


def test_a_repeat_for_another_workers_task_is_a_409_whatever_its_seq(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a, c = worker(core, "a"), worker(core, "c")
    assert (take(core, a), take(core, c)) == (1, 2)
    report(core, a, 1, "active")
    handout = core.tasks[1].handout
    many = [WorkerTaskUpdate(seq=i, handout=core.tasks[2].handout, log_lines=[f"c {i}"]) for i in range(1, 51)]
    task_updates.apply(core, c, 2, many)
    assert c.last_seq == 50
    sent(core)
    for seq in (5, 50, 60):  # a repeat of c's, its last seq, a new one
        inject = [WorkerTaskUpdate(seq=seq, handout=handout, status=TaskStatus.FAILED, log_lines=["C-INJECT"])]
        with pytest.raises(Conflict, match="not assigned to this worker"):
            task_updates.apply(core, c, 1, inject)
    # nothing changed: a still runs it, c's seq did not move, no failure, no line, nothing for the Server
    assert core.tasks[1].worker_id == a.id and core.tasks[1].failure_count == 0 and a.current_task_id == 1
    assert c.last_seq == 50 and sent(core) == []
    assert "C-INJECT" not in log_text(core, 1)
    report(core, a, 1, "completed")
    assert [(u.task_id, u.status) for u in sent(core)] == [(1, TaskStatus.COMPLETED)]


def _completed(core: ManagerCore, a: WorkerState) -> list[WorkerTaskUpdate]:
    return batch(a, core.tasks[1].handout, "active", "completed")


def _given_back_before_starting(core: ManagerCore, a: WorkerState) -> list[WorkerTaskUpdate]:
    return batch(a, core.tasks[1].handout, "queued")  # waits in the ready queue


def _given_back_after_starting(core: ManagerCore, a: WorkerState) -> list[WorkerTaskUpdate]:
    return batch(a, core.tasks[1].handout, "active", "queued")  # back to the Server


@pytest.mark.parametrize("ending", [_completed, _given_back_before_starting, _given_back_after_starting])
@pytest.mark.parametrize("restart", [False, True])
def test_a_repeat_of_the_batch_that_ended_a_hand_out_is_acknowledged(
    tmp_path: Path, ending: Callable[[ManagerCore, WorkerState], list[WorkerTaskUpdate]], restart: bool
) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a = worker(core, "a")
    assert take(core, a) == 1
    ups = ending(core, a)
    task_updates.apply(core, a, 1, ups)
    if restart:
        core.conn.close()
        core = make_core(tmp_path)
        a = core.workers[a.id]
    sent(core)
    before = (log_text(core, 1), {t.id: (t.worker_id, t.handout, t.failure_count) for t in core.tasks.values()})
    # a never heard the answer: it sends the same batch again, and is told it was taken
    assert task_updates.apply(core, a, 1, ups) == a.last_seq == ups[-1].seq
    after = (log_text(core, 1), {t.id: (t.worker_id, t.handout, t.failure_count) for t in core.tasks.values()})
    assert after == before and sent(core) == []


def test_a_repeat_for_a_task_handed_to_another_worker_since_is_a_409(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    ups = batch(a, core.tasks[1].handout, "active", "failed")
    task_updates.apply(core, a, 1, ups)
    assert take(core, b) == 1
    sent(core)
    with pytest.raises(Conflict, match="not assigned to this worker"):
        task_updates.apply(core, a, 1, ups)
    assert core.tasks[1].worker_id == b.id and core.tasks[1].failure_count == 1 and sent(core) == []


def test_a_repeat_for_a_task_the_worker_holds_again_is_acknowledged(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a = worker(core, "a")
    take(core, a)
    first = batch(a, core.tasks[1].handout, "active", "failed")
    task_updates.apply(core, a, 1, first)
    assert take(core, a) == 1 and core.tasks[1].handout != first[0].handout  # no other worker: a again
    again = batch(a, core.tasks[1].handout, "active")
    task_updates.apply(core, a, 1, again)
    for ups in (first, again):
        assert task_updates.apply(core, a, 1, ups) == again[-1].seq

"""A worker's updates whose transaction fails at its COMMIT (a full disk fails it there, after every statement):
nothing of them may stay in the Manager's memory. Before, the worker's seq had moved, so the retry was taken for
repeats and acknowledged (the worker dropped a result nothing had stored), and a completed task was no longer
held here, so its lease was renewed no more and it ran again elsewhere (found by a fault-injection audit)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from services.manager import task_updates
from services.manager.core import ManagerCore
from services.manager.model import WorkerState
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate
from tests.unit.manager.test_core import claimed, make_core, sent, take, worker


class FailingCommits:
    """The store's connection, whose next `fail` COMMITs fail as on a full disk, or only its `fail_at`-th."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.fail = 0
        self.fail_at: int | None = None  # counted from 1, in `commits`
        self.commits = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self.commits += 1
            if self.fail or self.commits == self.fail_at:
                self.fail = max(0, self.fail - 1)
                raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _updates(w: WorkerState, handout: int, *statuses: str) -> list[WorkerTaskUpdate]:
    return [
        WorkerTaskUpdate(seq=w.last_seq + i, handout=handout, status=TaskStatus(s), log_lines=[f"{s} line"])
        for i, s in enumerate(statuses, 1)
    ]


def _failing(core: ManagerCore) -> FailingCommits:
    conn = FailingCommits(core.conn)
    core.conn = conn  # type: ignore[assignment]
    return conn


@pytest.mark.parametrize("ending", ["completed", "failed", "queued"])
def test_a_batch_whose_commit_failed_is_applied_whole_when_sent_again(tmp_path: Path, ending: str) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a = worker(core, "a")
    assert take(core, a) == 1
    handout, seq = core.tasks[1].handout, a.last_seq
    conn = _failing(core)
    ups = _updates(a, handout, "active", ending)
    conn.fail = 1
    with pytest.raises(sqlite3.OperationalError):
        task_updates.apply(core, a, 1, ups)
    assert not conn.in_transaction  # rolled back: the next write does not join a transaction left open
    # as before the batch: still a's, its seq where it was, nothing for the Server, the blocklist as it was
    assert a.last_seq == seq and a.current_task_id == 1 and core.tasks[1].worker_id == a.id
    assert core.tasks[1].failure_count == 0 and core.tasks[1] not in core.ready and not core.blocklist
    assert sent(core) == []
    # the retry is applied, not acknowledged as repeats
    assert task_updates.apply(core, a, 1, ups) == ups[-1].seq
    statuses = [u.status for u in sent(core) if u.task_id == 1]
    assert statuses[-1] == {"completed": TaskStatus.COMPLETED, "failed": TaskStatus.SOFT_FAILED,
                            "queued": TaskStatus.QUEUED}[ending]  # fmt: skip
    assert (1 in core.tasks) == (ending == "failed") and a.current_task_id is None


def test_a_failed_task_goes_to_a_waiting_worker_only_once_its_transaction_committed(tmp_path: Path) -> None:
    """A soft failure puts the task back in the ready queue, where a worker waiting for work takes it: inside a
    transaction that then failed, the waiter got a task the store never gave it and the failing worker's retry
    met a new hand-out (stale). Waiters are fed after the COMMIT."""
    import asyncio

    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    loop = asyncio.new_event_loop()
    try:
        waiting = loop.create_future()
        core.waiters[b.id] = (b, waiting, None)
        conn = _failing(core)
        ups = _updates(a, core.tasks[1].handout, "active", "failed")
        conn.fail = 1
        with pytest.raises(sqlite3.OperationalError):
            task_updates.apply(core, a, 1, ups)
        assert not waiting.done() and core.tasks[1].worker_id == a.id and b.current_task_id is None
        task_updates.apply(core, a, 1, ups)  # the retry: applied, and then b gets the task
        assert waiting.done() and waiting.result().id == 1 and core.tasks[1].worker_id == b.id
    finally:
        loop.close()


def test_claimed_tasks_go_to_waiting_workers_only_once_their_transaction_committed(tmp_path: Path) -> None:
    """A claim's tasks are held once stored; the hand-out to a worker waiting for work is a write of its own,
    which a failed COMMIT undid while the waiter had the task already: a restarted Manager would not know it was
    that worker's, and could hand it out again while it ran."""
    import asyncio

    core = make_core(tmp_path)
    b = worker(core, "b")
    loop = asyncio.new_event_loop()
    try:
        waiting = loop.create_future()
        core.waiters[b.id] = (b, waiting, None)
        conn = _failing(core)
        conn.fail_at = 2  # the claim's tasks are stored, the transaction that holds them fails
        with pytest.raises(sqlite3.OperationalError):
            core.add_claimed([claimed(1)])
        assert not waiting.done() and b.current_task_id is None  # nothing handed out
        conn.fail_at = None
        core.feed_waiters()  # the next turn that feeds them (a request, a claim) hands it out, written
        assert waiting.done() and waiting.result().id == 1
    finally:
        loop.close()


def test_a_hand_out_whose_commit_failed_is_undone_and_the_worker_waits_on(tmp_path: Path) -> None:
    """Waiters are fed in a transaction of their own, after the one that made a task ready: a worker hears of its
    task only once that hand-out is stored; a failed COMMIT leaves the task ready and the worker waiting."""
    import asyncio

    core = make_core(tmp_path)
    b = worker(core, "b")
    loop = asyncio.new_event_loop()
    try:
        waiting = loop.create_future()
        core.waiters[b.id] = (b, waiting, None)
        conn = _failing(core)
        conn.fail_at = 3  # the claim's two transactions go through, the hand-out's fails
        core.add_claimed([claimed(1)])  # the claim is stored and held: no error for the claim loop
        assert not conn.in_transaction and core.feeding_due
        assert not waiting.done() and b.id in core.waiters and b.current_task_id is None
        assert core.tasks[1] in core.ready and core.tasks[1].worker_id is None
        conn.fail_at = None
        core.feed_waiters()
        assert waiting.done() and waiting.result().id == 1 and b.current_task_id == 1
        assert core.conn.execute("SELECT worker_id FROM tasks WHERE id = 1").fetchone()[0] == b.id
    finally:
        loop.close()


@pytest.mark.parametrize("how", ["signed off", "timed out", "forgotten"])
def test_a_task_taken_back_goes_to_a_waiting_worker_only_once_its_transaction_committed(
    tmp_path: Path, how: str
) -> None:
    """A worker signing off, timing out or forgotten gives its tasks back, where a worker waiting for work takes
    them: inside the transaction that then failed, the waiter ran a task the store did not say was its."""
    import asyncio

    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    loop = asyncio.new_event_loop()
    try:
        waiting = loop.create_future()
        core.waiters[b.id] = (b, waiting, None)
        conn = _failing(core)
        conn.fail = 1
        with pytest.raises(sqlite3.OperationalError):
            if how == "signed off":
                core.sign_off(a)
            elif how == "timed out":
                a.last_seen -= 10 * core.config.worker_timeout
                core.sweep_timeouts(now=a.last_seen + 2 * core.config.worker_timeout)
            else:
                core.forget_workers([a.id])
        assert not waiting.done() and b.current_task_id is None
        core.feed_waiters()  # the next turn that feeds waiters hands it out, written
        assert waiting.done() and waiting.result().id == 1
        assert core.conn.execute("SELECT worker_id FROM tasks WHERE id = 1").fetchone()[0] == b.id
    finally:
        loop.close()


def test_a_failed_hand_out_after_a_stored_batch_leaves_the_batch_applied(tmp_path: Path) -> None:
    """The worker's batch commits, then the hand-out of the task it gave back to a waiting worker fails at its
    own COMMIT: the batch's request succeeded (before, the error came out of it and its memory was put back to
    before the batch the store had kept, so the retry met a stale hand-out), the hand-out is undone to the
    task's number before it, and the waiting worker gets the task at the next write."""
    import asyncio

    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    handout = core.tasks[1].handout
    loop = asyncio.new_event_loop()
    try:
        waiting = loop.create_future()
        core.waiters[b.id] = (b, waiting, None)
        conn = _failing(core)
        ups = _updates(a, handout, "active", "failed")
        conn.fail_at = conn.commits + 2  # the batch's COMMIT goes through, the hand-out's fails
        assert task_updates.apply(core, a, 1, ups) == ups[-1].seq
        task = core.tasks[1]
        assert a.last_seq == ups[-1].seq and a.current_task_id is None and task.failure_count == 1
        assert task in core.ready and task.worker_id is None and task.handout == handout
        assert not waiting.done() and b.current_task_id is None and core.feeding_due
        assert task_updates.apply(core, a, 1, ups) == ups[-1].seq  # a's retry: repeats, acknowledged
        conn.fail_at = None
        with core.writing():  # the next write, whatever it is, feeds the waiting worker
            pass
        assert waiting.done() and waiting.result().id == 1 and task.worker_id == b.id and task.handout > handout
    finally:
        loop.close()


@pytest.mark.parametrize("prefetch", [False, True])
def test_a_hand_out_in_the_workers_own_request_whose_commit_failed_is_undone(tmp_path: Path, prefetch: bool) -> None:
    """The worker's request is answered 503; before, the task stayed the worker's in memory alone, and a Manager
    restarted before the next write would have handed it out again while the worker might run it."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a = worker(core, "a")
    if prefetch:
        assert take(core, a) == 1  # running task 1: the request is for its next one
    conn = _failing(core)
    conn.fail = 1
    with pytest.raises(sqlite3.OperationalError):
        core.hand_out(a, prefetch=prefetch)
    wanted = core.tasks[2 if prefetch else 1]
    assert wanted in core.ready and wanted.worker_id is None and not conn.in_transaction
    assert (a.current_task_id, a.next_task_id) == ((1, None) if prefetch else (None, None))
    again = core.hand_out(a, prefetch=prefetch)  # the worker's retry
    assert again is wanted and wanted.worker_id == a.id
    assert core.conn.execute("SELECT worker_id FROM tasks WHERE id = ?", (wanted.id,)).fetchone()[0] == a.id

"""The Manager's prefetch of one, on a real SQLite file: who may hold a next task, when it comes back, fencing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from services.manager import prefetch, task_updates
from services.manager.core import ManagerCore
from services.manager.errors import Conflict
from services.manager.model import WorkerState
from services.manager.store.db import connect, transaction
from services.protocol.states import TaskStatus, Unavailability, WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import Heartbeat, WorkerTaskUpdate
from tests.unit.manager.test_core import claimed, make_core, report, sent, take, worker


def prefetch_for(core: ManagerCore, w: WorkerState) -> int | None:
    assert w.current_task_id is not None
    task = prefetch.next_for(core, w, w.current_task_id)
    return None if task is None else task.id


def give_back(core: ManagerCore, w: WorkerState, task_id: int) -> None:
    handout = core.tasks[task_id].handout
    up = WorkerTaskUpdate(seq=w.last_seq + 1, handout=handout, status=TaskStatus.QUEUED, activity="given back")
    task_updates.apply(core, w, task_id, [up])


def test_a_running_worker_gets_one_next_task_and_the_same_one_when_it_asks_again(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 5)])
    w = worker(core, "w")
    assert take(core, w) == 1
    report(core, w, 1, "active")
    assert prefetch.next_for(core, w, 99) is None  # not the task it runs here: nothing
    assert prefetch_for(core, w) == 2
    handout = core.tasks[2].handout
    assert prefetch_for(core, w) == 2 and core.tasks[2].handout == handout  # a lost answer: the same hand-out
    assert (w.current_task_id, w.next_task_id) == (1, 2)
    assert prefetch.prefetched(core) == 1
    reports = {r.id: r for r in core.workers.reports(everything=True)}
    assert (reports[w.id].current_task_id, reports[w.id].next_task_id) == (1, 2)  # what the Server is told
    assert [t.id for t in core.ready] == [3, 4]


def test_the_next_task_becomes_current_when_the_running_one_ends_and_its_updates_are_accepted(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 5)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    prefetch_for(core, w)
    report(core, w, 1, "completed")
    assert (w.current_task_id, w.next_task_id) == (2, None)
    report(core, w, 2, "active")
    assert prefetch_for(core, w) == 3
    report(core, w, 2, "failed")  # a soft failure: the prefetched one still follows
    assert (w.current_task_id, w.next_task_id) == (3, None)
    assert 2 in [t.id for t in core.ready]
    last = {u.task_id: u.status for u in sent(core) if u.status is not None}  # the outbox merges a task's updates
    assert last == {1: TaskStatus.COMPLETED, 2: TaskStatus.SOFT_FAILED}


def test_a_next_task_given_back_unstarted_waits_here_for_another_worker_and_the_server_hears_nothing(
    tmp_path: Path,
) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 4)])
    a, b = worker(core, "a"), worker(core, "b")
    take(core, a)
    report(core, a, 1, "active")
    assert prefetch_for(core, a) == 2
    sent(core)
    give_back(core, a, 2)
    assert (a.current_task_id, a.next_task_id) == (1, None)
    assert [t.id for t in core.ready] == [2, 3]  # back in its place, first
    assert sent(core) == []  # it never left "assigned" at the Server
    assert take(core, b) == 2


def test_no_next_task_for_a_worker_that_would_not_run_it_and_a_sleeping_one_gives_it_back(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 5)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    w.status_requested = WorkerStatusRequest.ASLEEP  # "sleep after this task"
    assert prefetch_for(core, w) is None
    assert not prefetch.may_prefetch(w, 1)
    w.status_requested = None
    assert prefetch_for(core, w) == 2
    # it tells the Manager it sleeps (or is paused at its desk): its next task goes back at once
    core.heartbeat(w, Heartbeat(status=WorkerStatus.AWAKE, current_task_id=1, unavailable=Unavailability.USER_ACTIVE))
    assert w.next_task_id is None and 2 in [t.id for t in core.ready]
    core.heartbeat(w, Heartbeat(status=WorkerStatus.AWAKE, current_task_id=1))
    assert prefetch_for(core, w) == 2
    core.heartbeat(w, Heartbeat(status=WorkerStatus.ASLEEP))
    assert w.next_task_id is None and 2 in [t.id for t in core.ready]


def test_a_silent_worker_loses_both_tasks_and_only_the_started_one_counts_as_a_failure(tmp_path: Path) -> None:
    core = make_core(tmp_path, worker_timeout=10)
    core.add_claimed([claimed(i, index=i) for i in range(1, 4)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    prefetch_for(core, w)
    sent(core)
    assert core.sweep_timeouts(time.monotonic() + 60) == [w.id]
    assert (w.current_task_id, w.next_task_id) == (None, None)
    assert core.tasks[1].failure_count == 1 and core.tasks[2].failure_count == 0
    assert {t.id for t in core.ready} == {1, 2, 3}
    assert [(u.task_id, u.status) for u in sent(core)] == [(1, TaskStatus.SOFT_FAILED)]


def test_a_worker_that_asks_as_if_idle_lost_both_tasks(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 4)])
    w = worker(core, "w")
    take(core, w)
    prefetch_for(core, w)
    with transaction(core.conn):  # what the /task route does for a request without running_task_id
        core.take_back(w, "the worker asked for a new task without finishing this one")
    assert (w.current_task_id, w.next_task_id) == (None, None)
    assert [t.id for t in core.ready] == [1, 2, 3]


def test_fencing_a_next_task_the_server_handed_out_again_is_refused(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 4)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    prefetch_for(core, w)
    old_handout = core.tasks[2].handout
    core.drop([2], attempt=1)  # the Server's lease ran out and it re-leased the task (attempt 2)
    assert w.next_task_id is None
    report(core, w, 1, "completed")
    assert w.current_task_id is None
    with pytest.raises(Conflict):
        task_updates.apply(
            core, w, 2, [WorkerTaskUpdate(seq=w.last_seq + 1, handout=old_handout, status=TaskStatus.ACTIVE)]
        )


def test_fair_order_a_new_higher_priority_job_waits_for_at_most_the_one_prefetched_task(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, 1, priority=10, index=i) for i in range(1, 9)])
    ws = [worker(core, f"w{i}") for i in range(2)]
    for w in ws:
        take(core, w)
        report(core, w, w.current_task_id or 0, "active")
        prefetch_for(core, w)
    core.add_claimed([claimed(100 + i, 2, priority=90, age=5, index=i) for i in range(4)])  # arrives meanwhile
    ran_low_after = {w.id: 0 for w in ws}
    for _ in range(2):
        for w in ws:
            report(core, w, w.current_task_id or 0, "completed")  # its prefetched task is current now
            current = w.current_task_id or 0
            if core.tasks[current].claim.job_id == 1:
                ran_low_after[w.id] += 1
            report(core, w, current, "active")
            prefetch_for(core, w)
    assert ran_low_after == {w.id: 1 for w in ws}  # only the task each had prefetched


def test_current_and_next_survive_a_manager_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 4)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    prefetch_for(core, w)
    core.conn.close()  # as after a SIGKILL: only what was committed remains
    again = ManagerCore(connect(tmp_path / "m.sqlite"), core.config)
    w2 = again.workers[w.id]
    assert (w2.current_task_id, w2.next_task_id) == (1, 2)
    assert [t.id for t in again.ready] == [3]


async def test_a_waiting_prefetch_is_fed_when_tasks_arrive_and_a_superseded_one_gets_none(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    w = worker(core, "w")
    take(core, w)
    report(core, w, 1, "active")
    stale = asyncio.create_task(core.wait_for_task(w, 5.0, running=1))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(core.wait_for_task(w, 5.0, running=1))  # the worker asked again
    await asyncio.sleep(0)
    assert await stale is None
    core.add_claimed([claimed(2, index=1)])
    got = await asyncio.wait_for(waiting, 2)
    assert got is not None and got.id == 2 and w.next_task_id == 2
    assert core.waiters == {}

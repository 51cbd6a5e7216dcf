"""The Manager passes a run's start and end on to the Server, by the worker's clock, through the outbox's merging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.manager import task_updates
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate
from tests.unit.manager.test_core import claimed, make_core, sent, take, worker


def test_start_and_end_survive_the_merge_of_active_into_completed(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    w = worker(core, "a")
    assert take(core, w) == 1
    sent(core)
    handout = core.tasks[1].handout
    began = datetime.now(UTC) - timedelta(seconds=10)
    ended = began + timedelta(seconds=4)
    ups = [
        WorkerTaskUpdate(seq=1, handout=handout, status=TaskStatus.ACTIVE, time=began),
        WorkerTaskUpdate(seq=2, handout=handout, steps_done=1),
        WorkerTaskUpdate(seq=3, handout=handout, status=TaskStatus.COMPLETED, time=ended),
    ]
    task_updates.apply(core, w, 1, ups)
    (update,) = sent(core)  # active was merged into completed
    assert update.status == TaskStatus.COMPLETED
    assert update.started == began and update.time == ended


def test_a_worker_clock_ahead_is_held_to_the_managers_now_and_a_missing_time_is_now(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1)])
    w = worker(core, "a")
    take(core, w)
    sent(core)
    handout = core.tasks[1].handout
    before = datetime.now(UTC)
    ahead = before + timedelta(hours=1)
    task_updates.apply(core, w, 1, [WorkerTaskUpdate(seq=1, handout=handout, status=TaskStatus.ACTIVE, time=ahead)])
    (active,) = sent(core)
    assert active.started is not None and before <= active.started <= datetime.now(UTC)
    task_updates.apply(core, w, 1, [WorkerTaskUpdate(seq=2, handout=handout, status=TaskStatus.COMPLETED)])
    (done,) = sent(core)
    assert done.time is not None and before <= done.time <= datetime.now(UTC)

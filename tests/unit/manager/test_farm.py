"""The Manager's core on a real SQLite file: scheduling, failure handling, blocklist, timeouts, the outbox."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.manager import task_updates
from services.manager.config import ManagerConfig
from services.manager.errors import Conflict
from services.manager.farm import Farm
from services.manager.model import WorkerState
from services.manager.store import outbox
from services.manager.store.db import connect
from services.protocol.jobs import Command
from services.protocol.link import ClaimedTask, TaskUpdate
from services.protocol.states import TaskStatus
from services.protocol.worker_api import SignOnRequest, WorkerTaskUpdate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def claimed(
    task_id: int, job_id: int = 1, *, priority: int = 50, age: int = 0, index: int = 0, **kw: object
) -> ClaimedTask:
    fields: dict[str, object] = dict(
        id=task_id, job_id=job_id, job_name=f"job{job_id}", job_priority=priority,
        job_created=T0 + timedelta(seconds=age), job_tags=[], max_task_failures=3, on_task_failure="fail-job",
        index=index, name=f"t{task_id}", type="exec", attempt=1, failure_count=0,
        commands=[Command(name="echo", parameters={"message": "hi"})], steps_total=1,
    )  # fmt: skip
    fields.update(kw)
    return ClaimedTask.model_validate(fields)


def make_farm(tmp_path: Path, **cfg: object) -> Farm:
    config = ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, **cfg)  # type: ignore[arg-type]
    return Farm(connect(tmp_path / "m.sqlite"), config)


def worker(farm: Farm, name: str, types: tuple[str, ...] = ("exec",), tags: tuple[str, ...] = ()) -> WorkerState:
    wid, _secret = farm.register("s", "s", name, "linux")
    w = farm.workers[wid]
    farm.sign_on(w, SignOnRequest(name=name, platform="linux", task_types=list(types), tags=list(tags)))
    return w


def take(farm: Farm, w: WorkerState) -> int | None:
    from services.manager.store.db import transaction

    with transaction(farm.conn):
        task = farm.next_task(w)
    return None if task is None else task.id


def report(farm: Farm, w: WorkerState, task_id: int, *statuses: str) -> None:
    handout = farm.tasks[task_id].handout
    ups: list[WorkerTaskUpdate] = []
    for s in statuses:
        ups.append(WorkerTaskUpdate(seq=w.last_seq + len(ups) + 1, handout=handout, status=TaskStatus(s)))
    task_updates.apply(farm, w, task_id, ups)


def sent(farm: Farm) -> list[TaskUpdate]:
    """What went to the Server since the last call (the batch is acknowledged)."""
    got = outbox.next_batch(farm.conn, 10_000)
    if got is None:
        return []
    outbox.acknowledge(farm.conn, got[0])
    return got[1]


def test_scheduler_order_types_and_tags(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    farm.add_claimed(
        [
            claimed(1, 1, priority=50, age=0, index=1),
            claimed(2, 1, priority=50, age=0, index=0),
            claimed(3, 2, priority=90, age=5),
            claimed(4, 3, priority=99, type="blender"),
            claimed(5, 4, priority=99, job_tags=["gpu"]),
        ]
    )
    w = worker(farm, "a")
    assert [take(farm, w) for _ in range(1)] == [3]  # highest priority that this worker can run
    farm.tasks[3].worker_id = None  # (hand it back by hand for the order check)
    w.current_task_id = None
    gpu = worker(farm, "g", tags=("gpu", "fast"))
    assert take(farm, gpu) == 5
    assert take(farm, worker(farm, "b")) == 2  # same job: task index order
    assert take(farm, worker(farm, "c")) == 1
    assert take(farm, worker(farm, "d")) is None  # only the blender task is left


def test_prefetch_asks_for_idle_workers_plus_a_margin_and_claims_in_batches(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    assert farm.claim_request() is None  # no worker, nothing to ask for
    ws = [worker(farm, f"w{i}", types=("exec",), tags=("gpu",) if i == 0 else ()) for i in range(4)]
    req = farm.claim_request()
    assert req is not None
    assert (req.capacity, req.task_types, req.tags) == (4 + 4, ["exec"], ["gpu"])  # 4 idle + one spare each
    farm.add_claimed([claimed(i) for i in range(1, 9)])
    assert farm.claim_request() is None
    for w in ws:
        assert take(farm, w) is not None
    assert farm.claim_request() is None  # 4 busy, 4 spare at hand: the margin is full
    report(farm, ws[0], farm.workers[ws[0].id].current_task_id or 0, "active", "completed")
    take(farm, ws[0])
    assert farm.claim_request() is None  # one short of the margin: not worth a claim yet
    report(farm, ws[1], farm.workers[ws[1].id].current_task_id or 0, "active", "completed")
    take(farm, ws[1])
    req = farm.claim_request()
    assert req is not None and req.capacity == 2  # half the margin: one claim for both
    for w in ws[2:]:
        report(farm, w, farm.workers[w.id].current_task_id or 0, "active", "completed")
        assert take(farm, w) is not None
    req = farm.claim_request()
    assert req is not None and req.capacity == 4  # nothing at hand any more
    report(farm, ws[0], farm.workers[ws[0].id].current_task_id or 0, "active", "completed")
    req = farm.claim_request()
    assert req is not None and req.capacity == 5  # and a worker is idle


def test_prefetch_margin_grows_with_the_hand_out_rate_and_shrinks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    farm = make_farm(tmp_path)
    w = worker(farm, "w")
    now = [1000.0]
    monkeypatch.setattr("services.manager.farm.time.monotonic", lambda: now[0])
    farm.add_claimed([claimed(i) for i in range(1, 41)])
    for _ in range(40):  # 40 short tasks in 2 s: 20 per second
        task_id = take(farm, w)
        assert task_id is not None
        report(farm, w, task_id, "active", "completed")
        now[0] += 0.05
    req = farm.claim_request()
    assert req is not None and req.capacity == 1 + 10  # idle + what it takes in prefetch_seconds (0.5 s)
    now[0] += 5  # the worker has been quiet: back to one spare task per worker (at least 2)
    req = farm.claim_request()
    assert req is not None and req.capacity == 1 + 2


def test_soft_failure_retries_elsewhere_then_fails_and_blocklists(tmp_path: Path) -> None:
    farm = make_farm(tmp_path, blocklist_threshold=2)
    farm.add_claimed([claimed(1, max_task_failures=3), claimed(2, index=1, max_task_failures=3)])
    a, b = worker(farm, "a"), worker(farm, "b")
    assert take(farm, a) == 1
    report(farm, a, 1, "active", "failed")
    assert [(u.status, u.failure_count) for u in sent(farm) if u.status != TaskStatus.ACTIVE] == [
        (TaskStatus.SOFT_FAILED, 1)
    ]
    # a failed task 1: it gets task 2 and task 1 waits for b
    assert take(farm, a) == 2
    assert take(farm, b) == 1
    report(farm, b, 1, "failed")
    assert farm.tasks[1].failure_count == 2
    report(farm, a, 2, "failed")  # a's second failure in this job: blocklisted for (job 1, exec)
    assert farm.blocklist[(1, a.id, "exec")] == 2
    assert take(farm, a) is None
    sent(farm)
    assert take(farm, b) == 1  # scheduler order; b failed it once, but no other worker may run it
    report(farm, b, 1, "failed")  # third failure of task 1: failed for good
    assert 1 not in farm.tasks
    assert [u.status for u in sent(farm)] == [TaskStatus.FAILED]


def test_a_requeued_job_is_forgiven_by_the_blocklist_and_it_survives_a_restart(tmp_path: Path) -> None:
    farm = make_farm(tmp_path, blocklist_threshold=1)
    farm.add_claimed([claimed(1, max_task_failures=5), claimed(2, job_id=2, max_task_failures=5)])
    a = worker(farm, "a")
    assert take(farm, a) == 1
    report(farm, a, 1, "active", "failed")  # one failure is enough to blocklist a for job 1 here
    assert take(farm, a) == 2  # only job 2 is left for a
    report(farm, a, 2, "active", "completed")
    assert take(farm, a) is None
    farm.reset_blocklist([1])  # the wrangler fixed the scene and requeued job 1
    assert farm.blocklist == {}
    again = make_farm(tmp_path, blocklist_threshold=1)
    assert again.blocklist == {}  # gone from the store too
    assert take(farm, a) == 1


def test_worker_timeout_requeues_and_counts_a_started_task(tmp_path: Path) -> None:
    farm = make_farm(tmp_path, worker_timeout=5)
    farm.add_claimed([claimed(1), claimed(2, index=1)])
    a, b = worker(farm, "a"), worker(farm, "b")
    t1, t2 = take(farm, a), take(farm, b)
    report(farm, a, 1, "active")
    old = farm.tasks[1].handout
    b.last_seen = time.monotonic() + 100  # b keeps beating
    assert farm.sweep_timeouts(time.monotonic() + 10) == [a.id]
    assert (t1, t2) == (1, 2)
    assert a.status == "offline" and farm.tasks[1].worker_id is None
    assert farm.tasks[1].failure_count == 1
    with pytest.raises(Conflict):
        task_updates.apply(farm, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=old, status=TaskStatus.COMPLETED)])
    c = worker(farm, "c")
    assert take(farm, c) == 1 and farm.tasks[1].handout != old


def test_state_survives_a_restart(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    farm.add_claimed([claimed(1), claimed(2, index=1)])
    a = worker(farm, "a")
    take(farm, a)
    report(farm, a, 1, "active")
    farm.conn.close()
    again = make_farm(tmp_path)
    a2 = again.workers[a.id]
    assert a2.current_task_id == 1 and a2.last_seq == a.last_seq
    assert again.tasks[1].started and again.tasks[1].handout == 1
    assert [t.id for t in again.ready] == [2]
    report(again, a2, 1, "completed")
    # the active update from before the restart and the completion merge into one change
    assert [(u.task_id, u.status) for u in sent(again)] == [(1, TaskStatus.COMPLETED)]


def test_give_back_on_shutdown_returns_only_unstarted_tasks(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    farm.add_claimed([claimed(1), claimed(2, index=1), claimed(3, index=2)])
    a = worker(farm, "a")
    take(farm, a)
    assert farm.give_back_ready() == 2
    assert sorted(u.task_id for u in sent(farm) if u.status == TaskStatus.QUEUED) == [2, 3]
    assert list(farm.tasks) == [1]


def test_a_canceled_running_task_is_reported_canceled_and_its_worker_gets_409(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    farm.add_claimed([claimed(1), claimed(2, index=1)])
    a, b = worker(farm, "a"), worker(farm, "b")
    take(farm, a)
    take(farm, b)
    report(farm, a, 1, "active")
    handout = farm.tasks[1].handout
    sent(farm)
    farm.drop([1, 2], canceled=True)
    assert [(u.task_id, u.status) for u in sent(farm)] == [(1, TaskStatus.CANCELED)]  # 2 had not started
    assert farm.tasks == {} and a.current_task_id is None
    with pytest.raises(Conflict):
        task_updates.apply(
            farm, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=handout, status=TaskStatus.COMPLETED)]
        )


async def test_a_waiting_worker_gets_a_claimed_task_at_once_or_none_when_its_wait_ends(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    w = worker(farm, "w1")
    started = time.monotonic()
    assert await farm.wait_for_task(w, 0.2) is None
    assert 0.15 < time.monotonic() - started < 2
    assert farm.waiters == []
    waiting = asyncio.ensure_future(farm.wait_for_task(w, 10))
    await asyncio.sleep(0.01)
    farm.add_claimed([claimed(1)])
    got = await asyncio.wait_for(waiting, 1)
    assert got is not None and got.id == 1 and w.current_task_id == 1


async def test_a_worker_that_hangs_up_after_being_handed_a_task_gives_it_back(tmp_path: Path) -> None:
    farm = make_farm(tmp_path)
    w = worker(farm, "w1")
    waiting = asyncio.ensure_future(farm.wait_for_task(w, 10))
    await asyncio.sleep(0.01)
    farm.add_claimed([claimed(1)])  # handed to the waiting request ...
    waiting.cancel()  # ... whose worker went away before the answer left
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert w.current_task_id is None and [t.id for t in farm.ready] == [1]
    other = worker(farm, "w2")
    assert take(farm, other) == 1

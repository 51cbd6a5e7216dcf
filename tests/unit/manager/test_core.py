"""The Manager's core and worker registry on a real SQLite file: scheduling, failures, blocklist, timeouts, outbox."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.manager import taken_back, task_updates
from services.manager.config import ManagerConfig
from services.manager.core import ManagerCore
from services.manager.errors import Conflict
from services.manager.model import WorkerState
from services.manager.store import logs, outbox
from services.manager.store.db import connect
from services.protocol.jobs import Command
from services.protocol.link import ClaimedTask, TaskUpdate
from services.protocol.platforms import Platform
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


def make_core(tmp_path: Path, **cfg: object) -> ManagerCore:
    config = ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, **cfg)  # type: ignore[arg-type]
    return ManagerCore(connect(tmp_path / "m.sqlite"), config)


def worker(core: ManagerCore, name: str, types: tuple[str, ...] = ("exec",), tags: tuple[str, ...] = ()) -> WorkerState:
    wid, _secret = core.workers.register("s", "s", name, "linux")
    w = core.workers[wid]
    core.sign_on(w, SignOnRequest(name=name, platform=Platform.LINUX, task_types=list(types), tags=list(tags)))
    return w


def take(core: ManagerCore, w: WorkerState) -> int | None:
    from services.manager.store.db import transaction

    with transaction(core.conn):
        task = core.next_task(w)
    return None if task is None else task.id


def report(core: ManagerCore, w: WorkerState, task_id: int, *statuses: str) -> None:
    handout = core.tasks[task_id].handout
    ups: list[WorkerTaskUpdate] = []
    for s in statuses:
        ups.append(WorkerTaskUpdate(seq=w.last_seq + len(ups) + 1, handout=handout, status=TaskStatus(s)))
    task_updates.apply(core, w, task_id, ups)


def sent(core: ManagerCore) -> list[TaskUpdate]:
    """What went to the Server since the last call (the batch is acknowledged)."""
    got = outbox.next_batch(core.conn, 10_000)
    if got is None:
        return []
    outbox.acknowledge(core.conn, got[0])
    return got[1]


def test_scheduler_order_types_and_tags(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed(
        [
            claimed(1, 1, priority=50, age=0, index=1),
            claimed(2, 1, priority=50, age=0, index=0),
            claimed(3, 2, priority=90, age=5),
            claimed(4, 3, priority=99, type="blender"),
            claimed(5, 4, priority=99, job_tags=["gpu"]),
        ]
    )
    w = worker(core, "a")
    assert [take(core, w) for _ in range(1)] == [3]  # highest priority that this worker can run
    core.tasks[3].worker_id = None  # (hand it back by hand for the order check)
    w.current_task_id = None
    gpu = worker(core, "g", tags=("gpu", "fast"))
    assert take(core, gpu) == 5
    assert take(core, worker(core, "b")) == 2  # same job: task index order
    assert take(core, worker(core, "c")) == 1
    assert take(core, worker(core, "d")) is None  # only the blender task is left


def test_prefetch_asks_for_idle_workers_plus_a_margin_and_claims_in_batches(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    assert core.claim_request() is None  # no worker, nothing to ask for
    ws = [worker(core, f"w{i}", types=("exec",), tags=("gpu",) if i == 0 else ()) for i in range(4)]
    req = core.claim_request()
    assert req is not None
    assert (req.capacity, req.task_types, req.tags) == (4 + 4, ["exec"], ["gpu"])  # 4 idle + one spare each
    core.add_claimed([claimed(i) for i in range(1, 9)])
    assert core.claim_request() is None
    for w in ws:
        assert take(core, w) is not None
    assert core.claim_request() is None  # 4 busy, 4 spare at hand: the margin is full
    report(core, ws[0], core.workers[ws[0].id].current_task_id or 0, "active", "completed")
    take(core, ws[0])
    assert core.claim_request() is None  # one short of the margin: not worth a claim yet
    report(core, ws[1], core.workers[ws[1].id].current_task_id or 0, "active", "completed")
    take(core, ws[1])
    req = core.claim_request()
    assert req is not None and req.capacity == 2  # half the margin: one claim for both
    for w in ws[2:]:
        report(core, w, core.workers[w.id].current_task_id or 0, "active", "completed")
        assert take(core, w) is not None
    req = core.claim_request()
    assert req is not None and req.capacity == 4  # nothing at hand any more
    report(core, ws[0], core.workers[ws[0].id].current_task_id or 0, "active", "completed")
    req = core.claim_request()
    assert req is not None and req.capacity == 5  # and a worker is idle


def test_prefetch_margin_grows_with_the_hand_out_rate_and_shrinks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w")
    now = [1000.0]
    monkeypatch.setattr("services.manager.core.time.monotonic", lambda: now[0])
    core.add_claimed([claimed(i) for i in range(1, 41)])
    for _ in range(40):  # 40 short tasks in 2 s: 20 per second
        task_id = take(core, w)
        assert task_id is not None
        report(core, w, task_id, "active", "completed")
        now[0] += 0.05
    req = core.claim_request()
    assert req is not None and req.capacity == 1 + 10  # idle + what it takes in prefetch_seconds (0.5 s)
    now[0] += 5  # the worker has been quiet: back to one spare task per worker (at least 2)
    req = core.claim_request()
    assert req is not None and req.capacity == 1 + 2


def test_soft_failure_retries_elsewhere_then_fails_and_blocklists(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=2)
    core.add_claimed([claimed(1, max_task_failures=3), claimed(2, index=1, max_task_failures=3)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")
    assert [(u.status, u.failure_count) for u in sent(core) if u.status != TaskStatus.ACTIVE] == [
        (TaskStatus.SOFT_FAILED, 1)
    ]
    # a failed task 1: it gets task 2 and task 1 waits for b
    assert take(core, a) == 2
    assert take(core, b) == 1
    report(core, b, 1, "failed")
    assert core.tasks[1].failure_count == 2
    report(core, a, 2, "failed")  # a's second failure in this job: blocklisted for (job 1, exec)
    assert core.blocklist[(1, a.id, "exec")] == 2
    assert take(core, a) is None
    sent(core)
    assert take(core, b) == 1  # scheduler order; b failed it once, but no other worker may run it
    report(core, b, 1, "failed")  # third failure of task 1: failed for good
    assert 1 not in core.tasks
    # b's second failure blocklists b too: task 2 has no worker left here and goes back to the Server
    assert [(u.task_id, u.status) for u in sent(core)] == [(1, TaskStatus.FAILED), (2, TaskStatus.QUEUED)]
    assert core.tasks == {}


def test_a_requeued_job_is_forgiven_by_the_blocklist_and_it_survives_a_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=1)
    core.add_claimed([claimed(1, max_task_failures=5), claimed(2, job_id=2, max_task_failures=5)])
    a = worker(core, "a")
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")  # one failure is enough to blocklist a for job 1 here
    assert 1 not in core.tasks  # no worker here may run it: given back to the Server
    assert take(core, a) == 2  # only job 2 is left for a
    report(core, a, 2, "active", "completed")
    assert take(core, a) is None
    core.reset_blocklist([1])  # the wrangler fixed the scene and requeued job 1
    assert core.blocklist == {}
    again = make_core(tmp_path, blocklist_threshold=1)
    assert again.blocklist == {}  # gone from the store too
    core.add_claimed([claimed(1, max_task_failures=5, attempt=2)])  # the Server hands it out again
    assert take(core, a) == 1


def test_a_task_no_worker_here_may_run_goes_back_to_the_server_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=1)  # below the job's failure limit
    core.add_claimed([claimed(1, max_task_failures=3), claimed(2, index=1, max_task_failures=3), claimed(3, job_id=2)])
    a, b = worker(core, "a"), worker(core, "b", types=("blender",))  # b does not run exec at all
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")
    updates = [(u.task_id, u.status, u.unrunnable_here) for u in sent(core) if u.status != TaskStatus.ACTIVE]
    # task 1 failed softly; it and task 2 (same job, same type) have no worker left here that may run them
    assert updates == [
        (1, TaskStatus.SOFT_FAILED, False),
        (1, TaskStatus.QUEUED, True),
        (2, TaskStatus.QUEUED, True),
    ]
    assert sorted(core.tasks) == [3]  # job 2 is not affected
    assert take(core, a) == 3
    assert take(core, b) is None


def test_a_blocklisted_worker_leaves_the_task_to_others_that_may_run_it(tmp_path: Path) -> None:
    core = make_core(tmp_path, blocklist_threshold=1)
    core.add_claimed([claimed(1, max_task_failures=3)])
    a, b = worker(core, "a"), worker(core, "b")
    assert take(core, a) == 1
    report(core, a, 1, "active", "failed")
    assert not [u for u in sent(core) if u.unrunnable_here]
    assert take(core, a) is None
    assert take(core, b) == 1  # b may still run it: it stays here


def test_worker_timeout_requeues_and_counts_a_started_task(tmp_path: Path) -> None:
    core = make_core(tmp_path, worker_timeout=5)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a, b = worker(core, "a"), worker(core, "b")
    t1, t2 = take(core, a), take(core, b)
    report(core, a, 1, "active")
    old = core.tasks[1].handout
    b.last_seen = time.monotonic() + 100  # b keeps beating
    assert core.sweep_timeouts(time.monotonic() + 10) == [a.id]
    assert (t1, t2) == (1, 2)
    assert a.status == "offline" and core.tasks[1].worker_id is None
    assert core.tasks[1].failure_count == 1
    with pytest.raises(Conflict):
        task_updates.apply(core, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=old, status=TaskStatus.COMPLETED)])
    c = worker(core, "c")
    assert take(core, c) == 1 and core.tasks[1].handout != old


def test_state_survives_a_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a = worker(core, "a")
    take(core, a)
    report(core, a, 1, "active")
    core.conn.close()
    again = make_core(tmp_path)
    a2 = again.workers[a.id]
    assert a2.current_task_id == 1 and a2.last_seq == a.last_seq
    assert again.tasks[1].started and again.tasks[1].handout == 1
    assert [t.id for t in again.ready] == [2]
    report(again, a2, 1, "completed")
    # the active update from before the restart and the completion merge into one change
    assert [(u.task_id, u.status) for u in sent(again)] == [(1, TaskStatus.COMPLETED)]


def test_give_back_on_shutdown_returns_only_unstarted_tasks(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1), claimed(3, index=2)])
    a = worker(core, "a")
    take(core, a)
    assert core.give_back_ready() == 2
    assert sorted(u.task_id for u in sent(core) if u.status == TaskStatus.QUEUED) == [2, 3]
    assert list(core.tasks) == [1]


def test_a_canceled_running_task_is_reported_canceled_and_its_worker_gets_409(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a, b = worker(core, "a"), worker(core, "b")
    take(core, a)
    take(core, b)
    report(core, a, 1, "active")
    handout = core.tasks[1].handout
    sent(core)
    core.drop([1, 2], canceled=True)
    assert [(u.task_id, u.status) for u in sent(core)] == [(1, TaskStatus.CANCELED)]  # 2 had not started
    assert core.tasks == {} and a.current_task_id is None
    with pytest.raises(Conflict, match="not assigned to this worker: stop it"):
        task_updates.apply(core, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=handout, log_lines=["50 %"])])


def test_a_run_taken_back_that_completes_before_its_worker_hears_is_forwarded_once(tmp_path: Path) -> None:
    """A pause took back tasks this Manager had handed out: a short one completes before its worker hears. Its
    completion goes to the Server (which keeps it for a pause, refuses it for a cancel) rather than a 409 that
    made the task render again after the resume (24 of 400 over 5 pauses)."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(1, attempt=3), claimed(2, index=1), claimed(3, index=2), claimed(4, index=3)])
    a, b, c, d = (worker(core, n) for n in "abcd")
    for w in (a, b, c, d):
        take(core, w)
    handouts = {t: core.tasks[t].handout for t in (1, 2, 3, 4)}
    core.drop([1, 2, 3, 4], canceled=True)  # the Server's order: none had been reported active
    assert sent(core) == []

    def late(w: WorkerState, task_id: int, *ups: dict[str, object], handout: int | None = None) -> int:
        h = handouts[task_id] if handout is None else handout
        seqs = range(w.last_seq + 1, w.last_seq + 1 + len(ups))
        batch = [WorkerTaskUpdate.model_validate({"seq": s, "handout": h, **u}) for s, u in zip(seqs, ups, strict=True)]
        return task_updates.apply(core, w, task_id, batch)

    started = datetime.now(UTC) - timedelta(seconds=1)
    done: dict[str, object] = {"status": "completed", "activity": "done", "log_lines": ["Saved frame 1"]}
    assert late(a, 1, {"status": "active", "time": started.isoformat()}, done) == a.last_seq == 2
    (forwarded,) = sent(core)
    assert (forwarded.task_id, forwarded.attempt, forwarded.status, forwarded.worker_id) == (1, 3, "completed", a.id)
    assert forwarded.started == started and forwarded.activity == "done"
    assert forwarded.log_tail == ["Saved frame 1"] and forwarded.steps_done == 1
    assert "Saved frame 1" in logs.read_tail(core.conn, 1, 1000)[0]
    with pytest.raises(Conflict):  # once: a repeat of the same run's end is not a new one
        late(a, 1, done)
    with pytest.raises(Conflict):  # not another worker's run, nor another hand-out
        late(a, 2, done, handout=handouts[2])
    with pytest.raises(Conflict):
        late(b, 2, done, handout=handouts[2] + 100)
    with pytest.raises(Conflict):  # a failure or a progress report: the worker stops it, as before
        late(c, 3, {"status": "failed"})
    with pytest.raises(Conflict):
        late(c, 3, done)  # and a failed run is over
    with pytest.raises(Conflict):
        late(d, 4, {"status": "active"}, {"log_lines": ["50 %"]})
    assert sent(core) == []
    # the worker had sent the start alone and the run ended meanwhile: it offers the completion on its own
    late(d, 4, done)
    assert [(u.task_id, u.status) for u in sent(core)] == [(4, TaskStatus.COMPLETED)]


def test_runs_taken_back_are_kept_for_the_latest_only(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w")
    for n in range(1, taken_back.KEPT + 3):
        core.add_claimed([claimed(n, index=n)])
        take(core, w)
        core.drop([n], canceled=True)
    assert core.taken_back.completion(w, 1, [WorkerTaskUpdate(seq=1, handout=1, status=TaskStatus.COMPLETED)]) is None
    last = taken_back.KEPT + 2
    got = core.taken_back.completion(w, last, [WorkerTaskUpdate(seq=1, handout=last, status=TaskStatus.COMPLETED)])
    assert got is not None and got[1].task_id == last


async def test_a_waiting_worker_gets_a_claimed_task_at_once_or_none_when_its_wait_ends(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w1")
    started = time.monotonic()
    assert await core.wait_for_task(w, 0.2) is None
    assert 0.15 < time.monotonic() - started < 2
    assert core.waiters == {}
    waiting = asyncio.ensure_future(core.wait_for_task(w, 10))
    await asyncio.sleep(0.01)
    core.add_claimed([claimed(1)])
    got = await asyncio.wait_for(waiting, 1)
    assert got is not None and got.id == 1 and w.current_task_id == 1


async def test_a_worker_that_hangs_up_after_being_handed_a_task_gives_it_back(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    w = worker(core, "w1")
    waiting = asyncio.ensure_future(core.wait_for_task(w, 10))
    await asyncio.sleep(0.01)
    core.add_claimed([claimed(1)])  # handed to the waiting request ...
    waiting.cancel()  # ... whose worker went away before the answer left
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert w.current_task_id is None and [t.id for t in core.ready] == [1]
    other = worker(core, "w2")
    assert take(core, other) == 1


def test_a_new_job_priority_reorders_the_tasks_held_and_survives_a_restart(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    core.add_claimed([claimed(1, job_id=1, priority=60), claimed(2, job_id=1, priority=60, index=1)])
    core.add_claimed([claimed(3, job_id=2, priority=50, age=5), claimed(4, job_id=2, priority=50, age=5, index=1)])
    w = worker(core, "w1")
    assert take(core, w) == 1  # job 1 first: higher priority
    core.reprioritize({2: 90, 99: 10})  # job 99 is not held here: nothing to do for it
    core.fail(core.tasks[1], w, "boom", blocklist=False)  # task 1 goes back to the ready queue, priority 60
    assert [t.id for t in core.ready] == [3, 4, 1, 2]
    assert core.tasks[1].claim.job_priority == 60 and core.tasks[3].claim.job_priority == 90
    core.conn.close()

    again = make_core(tmp_path)  # the new priority was stored with the held claims
    assert [t.id for t in again.ready] == [3, 4, 1, 2]


def test_a_task_a_resume_hands_back_is_not_run_again(tmp_path: Path) -> None:
    """Paused and resumed at once: the Server hands the task back (a new attempt, `resumes_attempt` naming the one
    the pause took) before this Manager heard of the pause or before its completion reached the Server. A run still
    going carries on as the new attempt, and a completion already sent stands for it; 16 - 25 of 240 frames rendered
    twice over 4 such pauses before."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1), claimed(3, index=2)])
    a, b = worker(core, "a"), worker(core, "b")
    take(core, a)
    take(core, b)
    report(core, a, 1, "active")
    report(core, b, 2, "active", "completed")
    sent(core)
    running = core.tasks[1]
    core.add_claimed([claimed(1, attempt=2, resumes_attempt=1), claimed(2, attempt=2, resumes_attempt=1)])
    assert core.tasks[1] is running and running.claim.attempt == 2 and running.worker_id == a.id
    assert a.current_task_id == 1 and 1 not in {t.id for t in core.ready}
    stood, running_on = sent(core)
    assert (stood.task_id, stood.attempt, stood.status, stood.worker_id) == (2, 2, TaskStatus.COMPLETED, b.id)
    # the Server refuses the start it heard for attempt 1: the run says it runs as attempt 2 (or a second pause would
    # take it for not started and stop it, and it would have no start time)
    assert (running_on.task_id, running_on.attempt, running_on.status, running_on.worker_id) == (
        1, 2, TaskStatus.ACTIVE, a.id
    )  # fmt: skip
    assert 2 not in core.tasks
    report(core, a, 1, "completed")
    assert [(u.task_id, u.attempt, u.status) for u in sent(core)] == [(1, 2, TaskStatus.COMPLETED)]
    # handed out again any other way (a requeue, another pause's attempt): the old hand-out is stale, as before
    take(core, a)
    assert a.current_task_id == 3
    core.add_claimed([claimed(3, attempt=2), claimed(2, attempt=3, resumes_attempt=2)])
    assert core.tasks[3].worker_id is None and core.tasks[3] in core.ready
    assert core.tasks[2] in core.ready  # its completion stood for attempt 2 already
    assert sent(core) == []


def test_a_run_let_go_by_a_pause_carries_on_when_a_resume_hands_it_back(tmp_path: Path) -> None:
    """The pause's order came (the run was let go) and then the resume's claim: a worker still running it, not told
    to stop, carries on as the new hand-out; a completion that comes after the claim stands for it."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1), claimed(3, index=2), claimed(4, index=3)])
    a, b, c, d = (worker(core, n) for n in "abcd")
    for w in (a, b, c, d):
        take(core, w)
    for w, t in ((a, 1), (b, 2), (c, 3)):
        report(core, w, t, "active")
    handouts = {t: core.tasks[t].handout for t in (1, 2, 3, 4)}
    sent(core)
    core.drop([1, 2, 3, 4], canceled=True)
    sent(core)
    with pytest.raises(Conflict):  # c is told to stop its run: it will not carry on
        task_updates.apply(core, c, 3, [WorkerTaskUpdate(seq=c.last_seq + 1, handout=handouts[3], log_lines=["x"])])
    core.add_claimed([claimed(t, attempt=2, resumes_attempt=1) for t in (1, 2, 3, 4)])
    assert (core.tasks[1].worker_id, core.tasks[1].handout, core.tasks[1].started) == (a.id, handouts[1], True)
    assert a.current_task_id == 1 and b.current_task_id == 2
    assert core.tasks[3].worker_id is None and core.tasks[3] in core.ready
    # d never said it started its task (refused it when it asked to start it, as a prefetched task): run anew
    assert core.tasks[4] in core.ready and d.current_task_id is None
    assert sorted((u.task_id, u.attempt, u.status) for u in sent(core)) == [
        (1, 2, TaskStatus.ACTIVE), (2, 2, TaskStatus.ACTIVE)
    ]  # fmt: skip
    task_updates.apply(
        core, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=handouts[1], status=TaskStatus.COMPLETED)]
    )
    assert [(u.task_id, u.attempt, u.status) for u in sent(core)] == [(1, 2, TaskStatus.COMPLETED)]
    # a restarted Manager still knows whose it is
    again = ManagerCore(core.conn, core.config)
    assert again.tasks[2].worker_id == b.id and again.tasks[2].claim.attempt == 2


def test_a_late_completion_stands_for_the_hand_out_a_resume_brought_back(tmp_path: Path) -> None:
    """The worker that ran on holds another task by then (its prefetched next became its current): the new
    hand-out waits in the ready queue, and the run's completion stands for it."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(1), claimed(2, index=1)])
    a = worker(core, "a")
    take(core, a)
    handout = core.tasks[1].handout
    core.drop([1], canceled=True)
    assert take(core, a) == 2
    core.add_claimed([claimed(1, attempt=2, resumes_attempt=1)])
    assert core.tasks[1] in core.ready
    task_updates.apply(core, a, 1, [WorkerTaskUpdate(seq=a.last_seq + 1, handout=handout, status=TaskStatus.COMPLETED)])
    assert [(u.task_id, u.attempt, u.status) for u in sent(core)] == [(1, 2, TaskStatus.COMPLETED)]
    assert 1 not in core.tasks and 1 not in {t.id for t in core.ready}


def test_a_run_whose_worker_heard_it_was_let_go_does_not_carry_on_after_a_resume(tmp_path: Path) -> None:
    """The worker hears of the pause's drop through its may-i-run long poll and stops the run; the resume's claim,
    arriving before the worker's next update, gave the task back to it: it no longer ran it, and when it asked for
    a new task the task failed ("asked for a new task without finishing this one"), for good at one failure."""
    from services.manager.api.worker import _may_i_run

    core = make_core(tmp_path)
    core.add_claimed([claimed(1, max_task_failures=1)])
    a = worker(core, "a")
    take(core, a)
    report(core, a, 1, "active")
    handout = core.tasks[1].handout
    sent(core)
    core.drop([1], canceled=True)
    sent(core)
    assert _may_i_run(core, a, 1, handout).may_keep_running is False
    core.add_claimed([claimed(1, attempt=2, resumes_attempt=1, max_task_failures=1)])
    assert core.tasks[1].worker_id is None and core.tasks[1] in core.ready
    assert core.hand_out(a) is core.tasks[1]  # a new run, nothing failed
    assert [u.status for u in sent(core)] == []

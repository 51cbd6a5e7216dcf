"""The store's claim, lease and fencing logic, in process on a real SQLite file and a real PostgreSQL database.

No Server process and no HTTP: the functions the Manager link calls, on sessions of `open_sessions`, with a
fresh database per test. The HTTP tests (tests/integration/test_link_server.py) cover the same rules end to end.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import utcnow
from services.protocol.jobs import JobAction, JobSubmission, OnTaskFailure
from services.protocol.link import ClaimRequest, TaskUpdate, UpdateBatch
from services.protocol.states import JobStatus, Role, TaskStatus
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import EventRow, JobRow, ManagerExclusionRow, ManagerRow, TaskRow, WorkerRow
from services.server.store import farm, job_counts, jobs, lease_expiry, link, previews, silent, worker_limit
from services.server.store.convert import aware
from services.server.store.errors import Conflict, NotFound
from services.server.store.now_and_then import NowAndThen
from services.server.store.sessions import open_sessions
from tests.support.databases import database_url
from tests.support.pg_race import postgres_writers, race

pytestmark = pytest.mark.timeout(90)

ADMIN = jobs.Actor("admin", Role.ADMIN)
LEASE = 60.0


@pytest.fixture(params=["sqlite", "postgres"])
def writers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_url(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _, write_sessions = open_sessions(engine)
        yield write_sessions
        engine.dispose()


class Link:
    """One Manager's side of the link, called the way api/manager_link.py calls the store."""

    def __init__(self, writers: sessionmaker[Session], name: str) -> None:
        self.writers = writers
        with writers() as s:
            row, _ = farm.create_manager(s, name)
            s.commit()
            self.id = row.id
        self.seq = 0

    def claim(self, capacity: int, lease_seconds: float = LEASE) -> dict[int, int]:
        """{task id: attempt} of the tasks leased."""
        with self.writers() as s:
            claimed = link.claim(s, s.get_one(ManagerRow, self.id), ClaimRequest(capacity=capacity), lease_seconds)
            s.commit()
        return {t.id: t.attempt for t in claimed}

    def send(self, *updates: TaskUpdate) -> list[str]:
        """Reasons of the refused updates."""
        self.seq += 1
        with self.writers() as s:
            ack = link.apply_batch(
                s, s.get_one(ManagerRow, self.id), UpdateBatch(seq=self.seq, task_updates=list(updates)), LEASE
            )
            s.commit()
        return [r.reason for r in ack.rejected]


def submit(writers: sessionmaker[Session], frames: str = "1-10", max_task_failures: int = 3) -> int:
    with writers() as s:
        settings = {"command": ["true", "{frame}"], "frames": frames}
        sub = JobSubmission(name="store test", type="exec", settings=settings, max_task_failures=max_task_failures)
        job = jobs.submit(s, sub, ADMIN)
        s.commit()
        return job.id


def task(writers: sessionmaker[Session], task_id: int) -> TaskRow:
    with writers() as s:
        return s.get_one(TaskRow, task_id)


def job(writers: sessionmaker[Session], job_id: int) -> JobRow:
    with writers() as s:
        return s.get_one(JobRow, job_id)


def expire(writers: sessionmaker[Session]) -> int:
    with writers() as s:
        # a Server started long ago: no grace period
        n = lease_expiry.expire_leases(s, LEASE, started=time.monotonic() - 2 * LEASE)
        s.commit()
    return n


def update(task_id: int, attempt: int, status: TaskStatus | None, **fields: object) -> TaskUpdate:
    return TaskUpdate.model_validate({"task_id": task_id, "attempt": attempt, "status": status, **fields})


def test_claims_hand_out_distinct_tasks_until_none_is_left(writers: sessionmaker[Session]) -> None:
    submit(writers, "1-10")
    a, b = Link(writers, "a"), Link(writers, "b")
    first, second = a.claim(4), b.claim(4)
    assert len(first) == len(second) == 4
    assert not first.keys() & second.keys()
    rest = a.claim(10)
    assert len(rest) == 2
    assert not rest.keys() & (first.keys() | second.keys())
    assert b.claim(10) == {}
    assert all(task(writers, t).status == TaskStatus.ASSIGNED for t in [*first, *second, *rest])


def test_concurrent_claims_never_share_a_task(writers: sessionmaker[Session]) -> None:
    submit(writers, "1-60")
    links = [Link(writers, f"m{i}") for i in range(4)]
    start = threading.Barrier(len(links))

    def drain(m: Link) -> list[int]:
        start.wait(timeout=30)
        got: list[int] = []
        while claimed := m.claim(3):
            got.extend(claimed)
        return got

    with ThreadPoolExecutor(len(links)) as pool:
        results = list(pool.map(drain, links))
    everything = [t for got in results for t in got]
    assert len(everything) == 60
    assert len(set(everything)) == 60


def test_an_expired_lease_requeues_an_unstarted_task_without_counting_a_failure(
    writers: sessionmaker[Session],
) -> None:
    submit(writers, "1")
    m = Link(writers, "m")
    (tid, attempt) = next(iter(m.claim(1, lease_seconds=0.0).items()))
    time.sleep(0.01)
    assert expire(writers) == 1
    row = task(writers, tid)
    # still naming its Manager, which may report its run late (below)
    assert (row.status, row.failure_count, row.manager_id, row.lease_expires) == (TaskStatus.QUEUED, 0, m.id, None)
    assert m.claim(1) == {tid: attempt + 1}


def test_a_slow_managers_run_of_an_expired_lease_is_kept_not_rendered_again(writers: sessionmaker[Session]) -> None:
    """Found by a fault-injection audit: a Manager stopped (or its answers delayed) past its lease had finished
    runs refused as not held and rendered them again; as after a pause, its completion is kept, and a claim of
    the task by it names the attempt it ran (`resumes_attempt`), so the run it holds stands for the new one."""
    job_id = submit(writers, "1-3")
    m, other = Link(writers, "m"), Link(writers, "other")
    claimed = m.claim(3)
    late_done, taken, carried = sorted(claimed)
    for tid in claimed:
        assert m.send(update(tid, claimed[tid], TaskStatus.ACTIVE, worker_id="w1", worker_name="w1")) == []
    with writers() as s:  # the Manager stops: every lease runs out
        for tid in claimed:
            s.get_one(TaskRow, tid).lease_expires = s.get_one(TaskRow, tid).updated
        s.commit()
    assert expire(writers) == 3
    # back: the completion it held is kept
    assert m.send(update(late_done, claimed[late_done], TaskStatus.COMPLETED, steps_done=1)) == []
    assert task(writers, late_done).status == TaskStatus.COMPLETED
    # another Manager's claim makes it another run: the first one's completion of it is refused
    assert other.claim(1) == {taken: claimed[taken] + 1}
    refused = m.send(update(taken, claimed[taken], TaskStatus.COMPLETED, steps_done=1))
    assert len(refused) == 1 and "not held by this Manager" in refused[0]
    with writers() as s:
        again = link.claim(s, s.get_one(ManagerRow, m.id), ClaimRequest(capacity=3), LEASE)
        s.commit()
    assert {t.id: t.resumes_attempt for t in again} == {carried: claimed[carried]}  # it carries its run on
    assert job(writers, job_id).tasks_completed == 1


def test_an_expired_lease_of_a_started_task_is_a_soft_failure(writers: sessionmaker[Session]) -> None:
    job_id = submit(writers, "1", max_task_failures=2)
    m = Link(writers, "m")
    for failures, status in ((1, TaskStatus.QUEUED), (2, TaskStatus.FAILED)):
        (tid, attempt) = next(iter(m.claim(1).items()))
        assert m.send(update(tid, attempt, TaskStatus.ACTIVE, worker_id="w1", worker_name="w1")) == []
        with writers() as s:  # the Manager goes silent: its lease runs out
            s.get_one(TaskRow, tid).lease_expires = s.get_one(TaskRow, tid).updated
            s.commit()
        assert expire(writers) == 1
        row = task(writers, tid)
        assert (row.status, row.failure_count) == (status, failures)
    assert job(writers, job_id).tasks_failed == 1


def test_nothing_expires_during_the_grace_period_after_a_start(writers: sessionmaker[Session]) -> None:
    submit(writers, "1")
    tid = next(iter(Link(writers, "m").claim(1, lease_seconds=0.0)))
    time.sleep(0.01)
    with writers() as s:
        assert lease_expiry.expire_leases(s, LEASE, started=time.monotonic()) == 0
        s.commit()
    assert task(writers, tid).status == TaskStatus.ASSIGNED


def test_a_stale_attempt_is_refused_and_changes_nothing(writers: sessionmaker[Session]) -> None:
    submit(writers, "1")
    m = Link(writers, "m")
    (tid, old) = next(iter(m.claim(1, lease_seconds=0.0).items()))
    time.sleep(0.01)
    expire(writers)
    (_, new) = next(iter(m.claim(1).items()))
    assert new == old + 1
    refused = m.send(update(tid, old, TaskStatus.COMPLETED, steps_done=1))
    assert len(refused) == 1 and "stale" in refused[0]
    assert task(writers, tid).status == TaskStatus.ASSIGNED
    assert m.send(update(tid, new, TaskStatus.COMPLETED, steps_done=1)) == []
    assert task(writers, tid).status == TaskStatus.COMPLETED


def test_a_task_is_never_completed_twice(writers: sessionmaker[Session]) -> None:
    job_id = submit(writers, "1-2")
    a, b = Link(writers, "a"), Link(writers, "b")
    claimed_a = a.claim(1, lease_seconds=0.0)
    (tid, attempt_a) = next(iter(claimed_a.items()))
    assert a.send(update(tid, attempt_a, TaskStatus.ACTIVE)) == []
    with writers() as s:  # a's lease runs out while its worker is still rendering
        s.get_one(TaskRow, tid).lease_expires = s.get_one(TaskRow, tid).updated
        s.commit()
    expire(writers)
    claimed_b = b.claim(2)
    attempt_b = claimed_b[tid]
    assert b.send(update(tid, attempt_b, TaskStatus.COMPLETED)) == []
    # the first Manager's worker finishes too, late: refused, whatever attempt it names
    assert len(a.send(update(tid, attempt_a, TaskStatus.COMPLETED))) == 1
    assert len(a.send(update(tid, attempt_b, TaskStatus.COMPLETED))) == 1
    # the same Manager reporting it again (a new batch) is refused: the task is no longer held
    assert len(b.send(update(tid, attempt_b, TaskStatus.COMPLETED))) == 1
    counts = job(writers, job_id)
    assert (counts.tasks_completed, counts.tasks_total) == (1, 2)


def test_a_repeated_batch_is_applied_once(writers: sessionmaker[Session]) -> None:
    job_id = submit(writers, "1-2")
    m = Link(writers, "m")
    claimed = m.claim(2)
    batch = UpdateBatch(seq=1, task_updates=[update(t, a, TaskStatus.COMPLETED) for t, a in claimed.items()])
    for _ in range(2):  # the Manager did not hear the first answer and sends the batch again
        with writers() as s:
            ack = link.apply_batch(s, s.get_one(ManagerRow, m.id), batch, LEASE)
            s.commit()
        assert (ack.last_seq, ack.rejected) == (1, [])
    assert job(writers, job_id).tasks_completed == 2


def test_a_task_type_excluded_for_a_manager_on_one_job_goes_to_the_others_only(
    writers: sessionmaker[Session],
) -> None:
    # what the Manager reported as runnable by none of its workers (failures.py writes these rows)
    excluded_job, other_job = submit(writers, "1-3"), submit(writers, "1-3")
    a, b = Link(writers, "a"), Link(writers, "b")
    with writers() as s:
        kind = s.scalars(select(TaskRow.type).where(TaskRow.job_id == excluded_job).limit(1)).one()
        s.add(ManagerExclusionRow(manager_id=a.id, job_id=excluded_job, task_type=kind, created=utcnow()))
        s.commit()
    got_a = a.claim(10)
    assert {task(writers, t).job_id for t in got_a} == {other_job} and len(got_a) == 3
    got_b = b.claim(10)
    assert {task(writers, t).job_id for t in got_b} == {excluded_job} and len(got_b) == 3


def _consistent(writers: sessionmaker[Session], job_id: int) -> JobRow:
    """The job's counters as its task rows have them, and no task running for a Manager that does not hold it."""
    with writers() as s:
        row = s.get_one(JobRow, job_id)
        statuses = [t.status for t in s.scalars(select(TaskRow).where(TaskRow.job_id == job_id))]
        held = [t for t in s.scalars(select(TaskRow).where(TaskRow.job_id == job_id)) if t.status in
                (TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED)]  # fmt: skip
        assert all(t.manager_id is not None for t in held), "a task held by no Manager"
        counted = (row.tasks_completed, row.tasks_failed, row.tasks_canceled, row.tasks_active)
        actual = (
            statuses.count(TaskStatus.COMPLETED),
            statuses.count(TaskStatus.FAILED),
            statuses.count(TaskStatus.CANCELED),
            sum(statuses.count(st) for st in (TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED)),
        )
        assert counted == actual, f"counters {counted}, task rows {actual}"
        return row


def test_a_job_failing_in_the_middle_of_a_batch_keeps_its_counters_true(writers: sessionmaker[Session]) -> None:
    """One batch fails a task (the job fails and cancels the rest) and then reports others of the same job: the
    ones it reports must be seen as the job's failure left them, not as the batch first loaded them."""
    job_id = submit(writers, "1-8", max_task_failures=1)
    m = Link(writers, "m")
    leased = list(m.claim(8).items())
    (t1, a1), (t2, a2), (t3, a3), (t4, a4) = leased[:4]
    assert m.send(update(t2, a2, TaskStatus.ACTIVE, worker_id="w2", worker_name="w2")) == []
    m.send(
        update(t1, a1, TaskStatus.FAILED, worker_id="w1", worker_name="w1", failure_count=1),
        update(t2, a2, TaskStatus.FAILED, worker_id="w2", worker_name="w2", failure_count=1),
        update(t3, a3, TaskStatus.ACTIVE, worker_id="w3", worker_name="w3"),
        update(t4, a4, TaskStatus.QUEUED, worker_id="w4", worker_name="w4"),
    )
    row = _consistent(writers, job_id)
    assert row.status == "failed"
    assert row.tasks_active >= 0


def test_a_task_no_worker_may_run_fails_naming_the_failure_that_blocklisted_them(
    writers: sessionmaker[Session],
) -> None:
    """Every worker is blocklisted for the job: the tasks fail saying why no worker may run them, and with the
    job's last failure on a worker, which is what a wrangler needs to fix."""
    job_id = submit(writers, "1-2", max_task_failures=3)
    m = Link(writers, "m")
    (t1, a1), (t2, a2) = m.claim(2).items()
    assert m.send(update(t1, a1, TaskStatus.ACTIVE, worker_id="w1", worker_name="w1")) == []
    soft = update(t1, a1, TaskStatus.SOFT_FAILED, worker_id="w1", worker_name="w1", failure_count=1,
                  activity="failed: exit status 1: sh -c 'exit 1'")  # fmt: skip
    assert m.send(soft) == []
    given_back = update(t2, a2, TaskStatus.QUEUED, activity="no worker of manager m may run it", unrunnable_here=True)
    assert m.send(given_back) == []
    row = task(writers, t2)
    assert row.status == TaskStatus.FAILED
    assert row.activity.startswith("no worker may run it: every exec worker that could is blocklisted")
    assert row.activity.endswith("; the last failure: failed: exit status 1: sh -c 'exit 1'")
    assert job(writers, job_id).tasks_failed == 1


def test_a_batch_waiting_for_a_cancel_acts_on_the_tasks_as_the_cancel_left_them(tmp_path: Path) -> None:
    """Two Servers on PostgreSQL: a wrangler's cancel through one is open when a Manager's batch reporting a task
    completed reaches the other. The batch waited for the job's lock, then moved the counters from the status it
    had read before the cancel (assigned): the job said 272 canceled of 262 and −10 running. It now starts from the
    task as the cancel left it (canceled), whose completion is kept as a run that finished before its Manager heard
    of the cancel, the counters moved from canceled."""
    with postgres_writers(tmp_path) as writers:
        job_id = submit(writers, "1-3")
        manager = Link(writers, "m")
        held = manager.claim(3)
        first = min(held)

        def change(s: Session, who: str) -> object:
            if who == "cancel":
                jobs.apply_action(s, jobs.get(s, job_id, for_update=True), JobAction.CANCEL, ADMIN)
                return None
            manager.seq += 1
            batch = UpdateBatch(seq=manager.seq, task_updates=[update(first, held[first], TaskStatus.COMPLETED)])
            return link.apply_batch(s, s.get_one(ManagerRow, manager.id), batch, LEASE)

        assert race(writers, change, "cancel", "batch") == "done"
        with writers() as s:
            rows = list(s.scalars(select(TaskRow).where(TaskRow.job_id == job_id)))
            counted = s.get_one(JobRow, job_id)
            statuses = sorted(str(t.status) for t in rows)
            assert statuses == ["canceled", "canceled", "completed"], statuses
            assert (counted.tasks_canceled, counted.tasks_completed, counted.tasks_active) == (2, 1, 0)
            assert counted.status == "canceled"


def act(writers: sessionmaker[Session], job_id: int, action: JobAction) -> None:
    with writers() as s:
        jobs.apply_action(s, jobs.get(s, job_id, for_update=True), action, ADMIN)
        s.commit()


def test_a_run_that_completed_after_a_pause_took_it_back_is_kept(writers: sessionmaker[Session]) -> None:
    """The Manager handed out tasks it had claimed before it heard of the pause: a run that completed is kept, not
    rendered again after the resume (a job of short tasks ran 47 of 400 twice over 5 pauses). Only the Manager the
    pause took the task from, for the attempt it took back, and only a completion."""
    job_id = submit(writers, "1-4")
    m, other = Link(writers, "m"), Link(writers, "other")
    (t1, a1), (t2, a2), (t3, a3), (t4, a4) = m.claim(4).items()
    act(writers, job_id, JobAction.PAUSE)
    assert job(writers, job_id).status == "paused"
    assert m.send(update(t1, a1, TaskStatus.COMPLETED, worker_id="w1", worker_name="w1")) == []
    kept = task(writers, t1)
    assert (kept.status, kept.manager_id, kept.worker_name) == (TaskStatus.COMPLETED, m.id, "w1")
    # a start is not taken back (its worker is told to stop), nor another Manager's word, nor a failure
    assert m.send(update(t2, a2, TaskStatus.ACTIVE)) == [f"task {t2} is paused"]
    assert other.send(update(t3, a3, TaskStatus.COMPLETED)) == [f"task {t3} is not held by this Manager"]
    assert m.send(update(t3, a3 + 1, TaskStatus.COMPLETED)) == [
        f"attempt {a3 + 1} of task {t3} is stale (current: {a3})"
    ]
    assert m.send(update(t3, a3, TaskStatus.FAILED)) == [f"task {t3} is paused"]
    row = _consistent(writers, job_id)
    assert (row.status, row.tasks_completed) == ("paused", 1)
    act(writers, job_id, JobAction.RESUME)
    # resumed, not yet claimed: the run the pause took back may still complete, and only that
    assert task(writers, t4).status == TaskStatus.QUEUED
    assert other.send(update(t2, a2, TaskStatus.COMPLETED)) == [f"task {t2} is not held by this Manager"]
    assert m.send(update(t2, a2, TaskStatus.ACTIVE)) == [f"task {t2} is queued"]
    assert m.send(update(t2, a2, TaskStatus.COMPLETED)) == []
    assert _consistent(writers, job_id).tasks_completed == 2
    # claimed again (a new attempt): the old run's word is stale, and a new run's is the only one taken
    again = m.claim(4)
    assert sorted(again) == [t3, t4] and all(again[t] == a + 1 for t, a in ((t3, a3), (t4, a4)))
    assert m.send(update(t3, a3, TaskStatus.COMPLETED)) == [f"attempt {a3} of task {t3} is stale (current: {a3 + 1})"]
    assert m.send(*(update(t, a, TaskStatus.COMPLETED) for t, a in again.items())) == []
    assert _consistent(writers, job_id).status == "completed"


def test_a_run_that_completed_before_its_manager_heard_of_a_cancel_is_kept_and_the_job_stays_canceled(
    writers: sessionmaker[Session],
) -> None:
    """From a fault-injection audit: a Manager killed just after two runs completed, the job canceled while it was
    down, the Manager back with their completions: they were refused and the tasks counted canceled, though their
    frames were rendered (a requeue of the job rendered them again). As after a pause: only that Manager's word,
    for the attempt the cancel took back, and only a completion; the job stays canceled."""
    job_id = submit(writers, "1-3")
    m, other = Link(writers, "m"), Link(writers, "other")
    (t1, a1), (t2, a2), (t3, a3) = m.claim(3).items()
    act(writers, job_id, JobAction.CANCEL)
    assert job(writers, job_id).status == "canceled"
    assert other.send(update(t1, a1, TaskStatus.COMPLETED)) == [f"task {t1} is not held by this Manager"]
    assert m.send(update(t2, a2, TaskStatus.ACTIVE)) == [f"task {t2} is canceled"]
    assert m.send(update(t2, a2, TaskStatus.FAILED)) == [f"task {t2} is canceled"]
    assert m.send(update(t1, a1, TaskStatus.COMPLETED, worker_id="w1", worker_name="w1")) == []
    kept = task(writers, t1)
    assert (kept.status, kept.worker_name) == (TaskStatus.COMPLETED, "w1")
    row = _consistent(writers, job_id)
    assert (row.status, row.tasks_completed, row.tasks_canceled) == ("canceled", 1, 2)
    # a requeue of the job runs what was not rendered, not what was
    act(writers, job_id, JobAction.REQUEUE)
    assert {t: task(writers, t).status for t in (t1, t2, t3)} == {
        t1: TaskStatus.COMPLETED, t2: TaskStatus.QUEUED, t3: TaskStatus.QUEUED
    }  # fmt: skip
    assert m.send(update(t3, a3, TaskStatus.COMPLETED)) == [f"task {t3} is not held by this Manager"]


def test_a_requeue_forgets_the_run_a_pause_took_back(writers: sessionmaker[Session]) -> None:
    """A resume keeps the Manager a pause took a task from (and so does a lease running out, above); a requeue
    asks for the task to run again."""
    job_id = submit(writers, "1-2")
    m = Link(writers, "m")
    (t1, a1), _ = m.claim(2).items()
    act(writers, job_id, JobAction.PAUSE)
    act(writers, job_id, JobAction.REQUEUE)
    assert m.send(update(t1, a1, TaskStatus.COMPLETED)) == [f"task {t1} is not held by this Manager"]
    assert task(writers, t1).status == TaskStatus.QUEUED


def test_a_paused_job_whose_last_runs_complete_after_the_pause_is_completed(writers: sessionmaker[Session]) -> None:
    job_id = submit(writers, "1-2")
    m = Link(writers, "m")
    held = m.claim(2)
    act(writers, job_id, JobAction.PAUSE)
    assert m.send(*(update(t, a, TaskStatus.COMPLETED) for t, a in held.items())) == []
    row = _consistent(writers, job_id)
    assert (row.status, row.tasks_completed) == ("completed", 2)


@pytest.mark.parametrize("again", [JobAction.RESUME, JobAction.REQUEUE])
def test_a_resume_or_requeue_voids_the_pauses_order_to_drop_tasks_not_yet_delivered(
    writers: sessionmaker[Session], again: JobAction
) -> None:
    """Paused and resumed (or requeued) before the Manager's next batch: the order to drop the tasks, delivered after
    the Manager claimed them again, dropped the new hand-out, which waited a minute for its lease to run out (the
    audit's pause-then-requeue: 10 tasks stuck assigned to a Manager holding none)."""
    job_id = submit(writers, "1-2")
    m = Link(writers, "m")
    held = m.claim(2)
    act(writers, job_id, JobAction.PAUSE)
    act(writers, job_id, again)
    again_held = m.claim(2)
    assert sorted(again_held) == sorted(held)
    m.seq += 1
    with writers() as s:
        ack = link.apply_batch(s, s.get_one(ManagerRow, m.id), UpdateBatch(seq=m.seq), LEASE)
        s.commit()
    assert ack.cancel_task_ids == []
    assert m.send(*(update(t, a, TaskStatus.COMPLETED) for t, a in again_held.items())) == []
    assert _consistent(writers, job_id).status == "completed"


def test_a_claim_after_a_resume_names_the_attempt_the_pause_took_back(writers: sessionmaker[Session]) -> None:
    """Only to the Manager the pause took the task from, and only after a resume (what lets that Manager carry on
    a run of it rather than render it again)."""

    def claim(manager: Link, capacity: int) -> dict[int, int | None]:
        with writers() as s:
            got = link.claim(s, s.get_one(ManagerRow, manager.id), ClaimRequest(capacity=capacity), LEASE)
            s.commit()
        return {t.id: t.resumes_attempt for t in got}

    job_id = submit(writers, "1-3")
    m, other = Link(writers, "m"), Link(writers, "other")
    first = claim(m, 2)
    assert list(first.values()) == [None, None]
    act(writers, job_id, JobAction.PAUSE)
    act(writers, job_id, JobAction.RESUME)
    (t1, t2), t3 = sorted(first), next(t for t in range(min(first), min(first) + 3) if t not in first)
    assert claim(other, 1) == {t1: None}  # another Manager: a task of its own, nothing to carry on
    assert claim(m, 2) == {t2: 1, t3: None}
    act(writers, job_id, JobAction.PAUSE)
    act(writers, job_id, JobAction.REQUEUE)  # a requeue asks for a new run
    assert set(claim(m, 3).values()) == {None}


def submit_continuing(writers: sessionmaker[Session], frames: str) -> int:
    """A job whose tasks fail for good at their first failure and whose other tasks run on."""
    with writers() as s:
        settings = {"command": ["true", "{frame}"], "frames": frames}
        sub = JobSubmission(
            name="runs on", type="exec", settings=settings, max_task_failures=1, on_task_failure=OnTaskFailure.CONTINUE
        )
        job_id = jobs.submit(s, sub, ADMIN).id
        s.commit()
    return job_id


def test_a_batch_whose_last_report_ends_the_job_as_failed_keeps_its_counters_true(
    writers: sessionmaker[Session],
) -> None:
    """The audit's `--continue` runs: a batch failed one task and completed the rest, the last completion ended the
    job (failed), and the job's end canceled and counted as canceled the tasks the same batch had completed but not
    yet written (completed 96, canceled 2, where the tasks were 98 completed and none canceled)."""
    job_id = submit_continuing(writers, "1-3")
    m = Link(writers, "m")
    (t1, a1), (t2, a2), (t3, a3) = m.claim(3).items()
    refused = m.send(
        update(t1, a1, TaskStatus.FAILED, failure_count=1, activity="exit 1"),
        update(t2, a2, TaskStatus.COMPLETED),
        update(t3, a3, TaskStatus.COMPLETED),
    )
    assert refused == []
    row = _consistent(writers, job_id)
    assert (row.status, row.tasks_completed, row.tasks_failed, row.tasks_canceled) == ("failed", 2, 1, 0)


def test_a_paused_job_none_of_whose_tasks_is_left_ends_rather_than_waiting_for_a_resume(
    writers: sessionmaker[Session],
) -> None:
    """The audit's stuck job: paused while one task ran, that one failed and the rest completed late; the job stayed
    paused with nothing left, and a resume made it active with nothing to run, for ever."""
    job_id = submit_continuing(writers, "1-2")
    m = Link(writers, "m")
    (t1, a1), (t2, a2) = m.claim(2).items()
    assert m.send(update(t1, a1, TaskStatus.ACTIVE)) == []
    act(writers, job_id, JobAction.PAUSE)
    assert job(writers, job_id).status == "pause-requested"
    assert m.send(update(t2, a2, TaskStatus.COMPLETED)) == []  # taken back, completed all the same
    assert m.send(update(t1, a1, TaskStatus.FAILED, failure_count=1, activity="exit 1")) == []
    row = _consistent(writers, job_id)
    assert (row.status, row.tasks_completed, row.tasks_failed) == ("failed", 1, 1)


def test_a_preview_dated_ahead_of_the_servers_clock_does_not_hold_the_jobs_preview(
    writers: sessionmaker[Session],
) -> None:
    """A Manager whose clock runs ahead (or a hostile one) cannot keep every other Manager's frames off the job."""
    job_id = submit(writers, frames="1-2")
    ahead, behind = Link(writers, "ahead"), Link(writers, "behind")
    (task_a,) = ahead.claim(1)
    (task_b,) = behind.claim(1)

    def report(by: Link, task_id: int, when: datetime, path: str) -> None:
        image = {"content_type": "image/jpeg", "width": 4, "height": 4, "data": "/9j/4A==", "frame_path": path}
        r = {"task_id": task_id, "job_id": job_id, "worker_id": "w", "worker_name": "w", "time": when}
        by.seq += 1
        with by.writers() as s:
            batch = UpdateBatch.model_validate({"seq": by.seq, "previews": [{**r, "preview": image}]})
            link.apply_batch(s, s.get_one(ManagerRow, by.id), batch, LEASE)
            s.commit()

    report(ahead, task_a, datetime(9999, 12, 31, tzinfo=UTC), "/r/ahead.png")
    report(behind, task_b, utcnow() + timedelta(seconds=1), "/r/behind.png")
    with writers() as s:
        shown = previews.get(s, previews.JOB, str(job_id))
        assert shown.frame_path == "/r/behind.png"
        assert aware(shown.time) < datetime(2100, 1, 1, tzinfo=UTC)


def test_a_manager_reporting_new_worker_ids_without_end_is_held_to_its_limit(
    writers: sessionmaker[Session], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile Manager made a worker row per new id it reported; at the limit its offline workers reported longest
    ago make room, and with none offline the new ids are not stored (a warning names the Manager)."""
    monkeypatch.setattr(worker_limit, "_warned", NowAndThen(0.0))
    manager, other = Link(writers, "m"), Link(writers, "other")

    def report(*workers: tuple[str, str]) -> None:
        body = [{"id": w, "name": w, "platform": "linux", "task_types": ["exec"], "tags": [], "status": status}
                for w, status in workers]  # fmt: skip
        for by in (manager, other):
            by.seq += 1
            with writers() as s:
                batch = UpdateBatch.model_validate({"seq": by.seq, "workers": body if by is manager else []})
                link.apply_batch(s, s.get_one(ManagerRow, by.id), batch, LEASE, max_workers=3)
                s.commit()

    def rows() -> set[str]:
        with writers() as s:
            return set(s.scalars(select(WorkerRow.id).where(WorkerRow.manager_id == manager.id)))

    report(("gone-1", "offline"), ("gone-2", "offline"), ("a", "awake"))
    with writers() as s:  # both were online once; gone-2 longest ago
        s.get_one(WorkerRow, "gone-1").reported = utcnow() - timedelta(hours=1)
        s.get_one(WorkerRow, "gone-2").reported = utcnow() - timedelta(hours=2)
        s.commit()
    report(("b", "awake"))
    assert rows() == {"gone-1", "a", "b"}
    with caplog.at_level("WARNING"):
        report(("c", "awake"), ("d", "awake"))  # room for one, made by the last offline worker
        assert rows() == {"a", "b", "c"}
        assert "manager m reported 1 new worker beyond its limit of 3" in caplog.text
        report(*((f"evil-{i}", "awake") for i in range(500)))
        assert rows() == {"a", "b", "c"}
        assert "manager m reported 500 new workers beyond its limit of 3" in caplog.text
    report(("a", "asleep"))  # a known worker still updates at the limit
    with writers() as s:
        assert s.get_one(WorkerRow, "a").status == "asleep"


def test_an_update_naming_another_managers_worker_keeps_the_tasks_worker(writers: sessionmaker[Session]) -> None:
    """A hostile Manager cannot show its task running on a worker of another Manager; its update still counts."""
    submit(writers, frames="1-2")
    mine, other = Link(writers, "mine"), Link(writers, "other")
    with writers() as s:
        s.add(WorkerRow(id="theirs", manager_id=other.id, name="theirs", platform="linux", task_types=["exec"],
                        tags=[], software={}, status="awake"))  # fmt: skip
        s.commit()
    ((t1, a1), (t2, a2)) = mine.claim(2).items()
    assert mine.send(update(t1, a1, TaskStatus.ACTIVE, worker_id="theirs", worker_name="theirs")) == []
    assert (task(writers, t1).status, task(writers, t1).worker_id, task(writers, t1).worker_name) == (
        "active",
        None,
        None,
    )
    assert mine.send(update(t2, a2, TaskStatus.ACTIVE, worker_id="w-mine", worker_name="w-mine")) == []
    assert mine.send(update(t2, a2, None, worker_id="theirs", worker_name="theirs")) == []
    assert (task(writers, t2).worker_id, task(writers, t2).worker_name) == ("w-mine", "w-mine")


def test_a_manager_cannot_show_another_managers_worker_or_task_in_its_reports(writers: sessionmaker[Session]) -> None:
    """From a role-matrix audit: a Manager's preview of its own task named another Manager's worker, and the job's
    latest frame showed that worker rendering it; a worker report of its own named another Manager's task as its
    current one, and the farm showed two workers on that task. Both are left out; the rest applies."""
    job_id = submit(writers, frames="1-2")
    mine, other = Link(writers, "mine"), Link(writers, "other")
    with writers() as s:
        s.add(WorkerRow(id="theirs", manager_id=other.id, name="theirs", platform="linux", task_types=["exec"],
                        tags=[], software={}, status="awake"))  # fmt: skip
        s.commit()
    (my_task,) = mine.claim(1)
    (their_task,) = other.claim(1)
    image = {"content_type": "image/jpeg", "width": 4, "height": 4, "data": "/9j/4A==", "frame_path": "/r/f.png"}
    preview = {"task_id": my_task, "job_id": job_id, "worker_id": "theirs", "worker_name": "theirs", "time": utcnow()}
    worker = {"id": "w-mine", "name": "w-mine", "platform": "linux", "task_types": ["exec"], "tags": [],
              "status": "awake"}  # fmt: skip
    for current, next_task, shown in ((their_task, my_task, (None, my_task)), (my_task, their_task, (my_task, None))):
        mine.seq += 1
        with writers() as s:
            batch = UpdateBatch.model_validate(
                {
                    "seq": mine.seq,
                    "previews": [{**preview, "preview": image}],
                    "workers": [{**worker, "current_task_id": current, "next_task_id": next_task}],
                }
            )
            link.apply_batch(s, s.get_one(ManagerRow, mine.id), batch, LEASE)
            s.commit()
        with writers() as s:
            with pytest.raises(NotFound):
                previews.get(s, previews.JOB, str(job_id))
            row = s.get_one(WorkerRow, "w-mine")
            assert (row.current_task_id, row.next_task_id) == shown


def test_a_preview_that_is_not_the_image_it_claims_is_dropped_and_the_batch_applied(
    writers: sessionmaker[Session],
) -> None:
    """A hostile Manager's page said to be a JPEG is never served; the task update beside it still counts."""
    job_id = submit(writers, frames="1")
    manager = Link(writers, "m")
    ((task_id, attempt),) = manager.claim(1).items()
    page = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    webp_said_jpeg = base64.b64encode(b"RIFF\x00\x00\x00\x00WEBPVP8 ").decode()
    for data in (page, webp_said_jpeg):
        image = {"content_type": "image/jpeg", "width": 4, "height": 4, "data": data, "frame_path": "/r/f.png"}
        r = {"task_id": task_id, "job_id": job_id, "worker_id": "w", "worker_name": "w", "time": utcnow()}
        manager.seq += 1
        with manager.writers() as s:
            batch = UpdateBatch.model_validate(
                {
                    "seq": manager.seq,
                    "task_updates": [{"task_id": task_id, "attempt": attempt, "status": "active"}],
                    "previews": [{**r, "preview": image}],
                }
            )
            assert link.apply_batch(s, s.get_one(ManagerRow, manager.id), batch, LEASE).rejected == []
            s.commit()
    with writers() as s:
        assert s.get_one(TaskRow, task_id).status == "active"
        with pytest.raises(NotFound):
            previews.get(s, previews.JOB, str(job_id))


def test_an_update_that_changes_nothing_is_no_event_and_still_renews_the_lease(writers: sessionmaker[Session]) -> None:
    submit(writers, frames="1")
    manager = Link(writers, "m")
    ((task_id, attempt),) = manager.claim(1).items()

    def task_events() -> int:
        with writers() as s:
            return len(s.scalars(select(EventRow.id).where(EventRow.type == "task-updated")).all())

    same = update(task_id, attempt, TaskStatus.ACTIVE, activity="frame 1", worker_id="w1", worker_name="w1")
    assert manager.send(same) == []
    before, lease = task_events(), task(writers, task_id).lease_expires
    assert before >= 1 and lease is not None
    time.sleep(0.01)
    assert manager.send(same, update(task_id, attempt, None, activity="frame 1", steps_done=0)) == []
    assert task_events() == before
    renewed = task(writers, task_id).lease_expires
    assert renewed is not None and renewed > lease
    assert manager.send(update(task_id, attempt, None, activity="frame 1 sampling")) == []
    assert task_events() == before + 1


def test_a_worker_its_manager_no_longer_reports_goes_offline(writers: sessionmaker[Session]) -> None:
    """Found by a fault-injection audit: after a Manager lost its store (or started with --fresh-store) the Server
    showed its old workers awake for ever, busy with tasks long finished, and refused to forget them."""
    manager = Link(writers, "m")

    def report(*worker_ids: str) -> None:
        reports = [{"id": w, "name": w, "platform": "linux", "task_types": ["exec"], "tags": [], "status": "awake",
                    "current_task_id": 42} for w in worker_ids]  # fmt: skip
        manager.seq += 1
        with writers() as s:
            batch = UpdateBatch.model_validate({"seq": manager.seq, "workers": reports})
            link.apply_batch(s, s.get_one(ManagerRow, manager.id), batch, LEASE)
            s.commit()

    report("ghost", "alive", "from-before")
    with writers() as s:
        s.get_one(WorkerRow, "ghost").reported = utcnow() - timedelta(seconds=silent.UNREPORTED_SECONDS + 5)
        s.get_one(WorkerRow, "from-before").reported = None  # a row kept from before the column
        s.commit()
    long_ago = time.monotonic() - 2 * silent.UNREPORTED_SECONDS
    with writers() as s:
        silent.offline_workers_nobody_reports(s, started=time.monotonic())  # just started: nothing yet
        s.commit()
        assert s.get_one(WorkerRow, "ghost").status == "awake"
    report("alive")  # a renewal: its Manager still knows this one
    with writers() as s:
        silent.offline_workers_nobody_reports(s, started=long_ago)
        s.commit()
    with writers() as s:
        gone = [s.get_one(WorkerRow, w) for w in ("ghost", "from-before")]
        assert [(w.status, w.current_task_id) for w in gone] == [("offline", None)] * 2
        assert s.get_one(WorkerRow, "alive").status == "awake"


def test_a_failed_task_cancels_every_task_waiting_on_it_however_deep_and_only_those(
    writers: sessionmaker[Session],
) -> None:
    """A chain, a diamond below it, and a step of its own: the failure of the chain's first task cancels the chain
    and the diamond (each task once), and leaves the independent step queued."""

    def step(name: str, *after: str) -> dict[str, object]:
        deps = {"dependencies": [{"dependsOn": a} for a in after]} if after else {}
        return {"name": name, "script": {"actions": {"onRun": {"command": "echo"}}}, **deps}

    chain = [step("c0"), *(step(f"c{i}", f"c{i - 1}") for i in range(1, 60))]
    diamond = [step("left", "c59"), step("right", "c59"), step("bottom", "left", "right")]
    template = {"specificationVersion": "jobtemplate-2023-09", "name": "deps",
                "steps": [*chain, *diamond, step("alone")]}  # fmt: skip
    with writers() as s:
        sub = JobSubmission(name="deps", type="openjd", settings={"template": template}, max_task_failures=1,
                            on_task_failure=OnTaskFailure.CONTINUE)  # fmt: skip
        job_id = jobs.submit(s, sub, ADMIN).id
        s.commit()
    m = Link(writers, "m")
    claimed = m.claim(10)  # only what may run: c0 and alone
    with writers() as s:
        names = {t.id: t.name for t in s.scalars(select(TaskRow).where(TaskRow.job_id == job_id))}
    by_name = {names[t]: (t, a) for t, a in claimed.items()}
    assert set(by_name) == {"c0", "alone"}
    t0, a0 = by_name["c0"]
    assert m.send(update(t0, a0, TaskStatus.ACTIVE)) == []
    assert m.send(update(t0, a0, TaskStatus.FAILED, failure_count=1)) == []
    with writers() as s:
        status = {t.name: t.status for t in s.scalars(select(TaskRow).where(TaskRow.job_id == job_id))}
        row = s.get_one(JobRow, job_id)
        assert status.pop("c0") == "failed" and status.pop("alone") == "assigned"
        assert set(status.values()) == {"canceled"} and len(status) == 59 + 3
        assert row.tasks_canceled == 62


def test_a_search_finds_names_whatever_their_case_on_both_databases(writers: sessionmaker[Session]) -> None:
    """SQLite's LIKE folds ASCII only: `émile` found `Émile-shot` on PostgreSQL and not on SQLite."""
    names = ["émile-shot", "Émile-shot", "ÉMILE-SHOT", "emile-plain", "ÜBERSCHALL", "100%_done", "1000 done"]
    with writers() as s:
        for name in names:
            sub = JobSubmission(name=name, type="exec", settings={"command": ["true"], "frames": "1"})
            jobs.submit(s, sub, ADMIN)
        s.commit()

    def found(search: str) -> list[str]:
        with writers() as s:
            return sorted(j.name for j in jobs.list_jobs(s, search=search, limit=100)[0])

    assert found("émile") == ["ÉMILE-SHOT", "Émile-shot", "émile-shot"]
    assert found("ÉMILE") == found("émile")
    assert found("überschall") == ["ÜBERSCHALL"]
    assert found("0%_") == ["100%_done"]  # LIKE's wildcards are the text they are


def delete_before_the_lock(
    monkeypatch: pytest.MonkeyPatch, writers: sessionmaker[Session], job_id: int
) -> Callable[..., set[int]]:
    """The next batch's lock finds the job canceled and deleted by another Server's transaction, committed after
    the batch read its tasks; returns the lock as it was."""
    original = job_counts.lock_for_status_changes

    def deleted_meanwhile(session: Session, *args: Any, **kwargs: Any) -> set[int]:
        with writers() as other:
            row = jobs.get(other, job_id, for_update=True)
            jobs.apply_action(other, row, JobAction.CANCEL, ADMIN)
            jobs.delete_job(other, row, ADMIN)
            other.commit()
        return original(session, *args, **kwargs)

    monkeypatch.setattr(link, "lock_for_status_changes", deleted_meanwhile)
    return original


def test_a_batch_waiting_for_a_job_deleted_meanwhile_refuses_its_updates(
    writers: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a multi-Server audit: a wrangler's delete at another Server committed while a Manager's batch
    waited for the job's row, and the batch answered 500 (NoResultFound) and the Manager failed over."""
    if writers.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the delete would wait for the batch")
    job_id = submit(writers, "1-2")
    m = Link(writers, "m")
    held = m.claim(2)
    (t1, a1), (t2, a2) = held.items()
    original = delete_before_the_lock(monkeypatch, writers, job_id)
    refused = m.send(update(t1, a1, TaskStatus.COMPLETED), update(t2, a2, TaskStatus.ACTIVE))
    assert refused == [f"no task with id {t1}", f"no task with id {t2}"]
    monkeypatch.setattr(link, "lock_for_status_changes", original)
    assert m.send(update(t1, a1, TaskStatus.COMPLETED)) == [f"no task with id {t1}"]  # and after, as ever


def test_a_batchs_progress_for_a_job_deleted_meanwhile_is_refused_and_the_rest_applies(
    writers: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with updates that change no status (progress, activity): the batch wrote the deleted tasks' rows
    and its flush failed (StaleDataError, a 500), and the other job's updates in it with it."""
    if writers.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the delete would wait for the batch")
    doomed, kept = submit(writers, "1"), submit(writers, "1")
    m = Link(writers, "m")
    held = m.claim(2)
    by_job = {task(writers, t).job_id: (t, a) for t, a in held.items()}
    (t1, a1), (t2, a2) = by_job[doomed], by_job[kept]
    assert m.send(update(t2, a2, TaskStatus.ACTIVE)) == []  # t1 is canceled at once: no run of it began
    delete_before_the_lock(monkeypatch, writers, doomed)
    refused = m.send(
        update(t1, a1, None, steps_done=1, steps_total=2), update(t2, a2, None, steps_done=1, steps_total=2)
    )
    assert refused == [f"no task with id {t1}"]
    assert task(writers, t2).steps_done == 1


@pytest.mark.parametrize("status", [TaskStatus.PAUSED, TaskStatus.ASSIGNED])
def test_a_status_no_manager_reports_is_refused_and_the_rest_of_the_batch_applies(
    writers: sessionmaker[Session], status: TaskStatus
) -> None:
    """From a hostile-input audit: a Manager's `paused` for a task it held was taken, and the task sat paused in
    an active job that nothing would run until a wrangler requeued it."""
    submit(writers, "1-2")
    m = Link(writers, "m")
    (t1, a1), (t2, a2) = m.claim(2).items()
    refused = m.send(update(t1, a1, status), update(t2, a2, TaskStatus.ACTIVE))
    assert refused == [f"a Manager does not report a task {status}"]
    assert (task(writers, t1).status, task(writers, t2).status) == ("assigned", "active")


def test_steps_done_past_the_steps_total_are_kept_at_the_total(writers: sessionmaker[Session]) -> None:
    submit(writers, "1")
    m = Link(writers, "m")
    ((t1, a1),) = m.claim(1).items()
    assert m.send(update(t1, a1, TaskStatus.ACTIVE, steps_done=2147483647, steps_total=1)) == []
    assert (task(writers, t1).steps_done, task(writers, t1).steps_total) == (1, 1)
    assert m.send(update(t1, a1, None, steps_total=4)) == []  # the total grew: the count stays as it was
    assert (task(writers, t1).steps_done, task(writers, t1).steps_total) == (1, 4)


def test_a_savepoints_events_wait_for_the_outermost_commit(writers: sessionmaker[Session]) -> None:
    """Found by a multi-Server audit: a bulk action wrote its first job's events at that job's savepoint, taking
    the farm's event lock (PostgreSQL) while it went on to lock the next job: a single change of that job holding
    it waited for the lock at its commit, and the two deadlocked (half of the bulk actions answered 503)."""
    if writers.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    a, b = submit(writers, "1"), submit(writers, "1")
    bulk_began, single_locked = threading.Event(), threading.Event()

    def bulk() -> None:
        with writers() as s:
            savepoint = s.begin_nested()
            jobs.set_priority(s, jobs.get(s, a, for_update=True), 70, ADMIN)
            savepoint.commit()
            bulk_began.set()
            assert single_locked.wait(10)
            savepoint = s.begin_nested()
            jobs.set_priority(s, jobs.get(s, b, for_update=True), 70, ADMIN)  # waits for the single change
            savepoint.commit()
            s.commit()

    def single() -> None:
        assert bulk_began.wait(10)
        with writers() as s:
            jobs.set_priority(s, jobs.get(s, b, for_update=True), 60, ADMIN)
            single_locked.set()
            s.commit()  # its event: it took the event lock the bulk held since its first savepoint

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(bulk), pool.submit(single)]:
            done.result(timeout=30)  # a deadlock was an OperationalError in one of them
    assert (job(writers, a).priority, job(writers, b).priority) == (70, 70)
    with writers() as s:
        updated = [e.data["id"] for e in s.scalars(select(EventRow).order_by(EventRow.id)) if e.type == "job-updated"]
    assert updated[-3:] == [b, a, b]  # the single change's, then the bulk's two, written at its commit


def test_a_savepoint_rolled_back_drops_its_events_and_keeps_the_earlier_ones(writers: sessionmaker[Session]) -> None:
    a, b = submit(writers, "1"), submit(writers, "1")
    with writers() as s:
        first = s.scalar(select(func.max(EventRow.id))) or 0
        savepoint = s.begin_nested()
        jobs.set_priority(s, jobs.get(s, a, for_update=True), 70, ADMIN)
        savepoint.commit()
        savepoint = s.begin_nested()
        jobs.set_priority(s, jobs.get(s, b, for_update=True), 70, ADMIN)
        savepoint.rollback()  # a bulk item refused
        s.commit()
    with writers() as s:
        written = [(e.type, e.data["id"]) for e in s.scalars(select(EventRow).where(EventRow.id > first))]
    assert written == [("job-updated", a)]


def test_a_waiting_job_still_being_stored_cannot_be_held_yet(writers: sessionmaker[Session]) -> None:
    """From the review: it was logged as paused, then queued when stored, and ran without the deleted job."""
    job_id = submit(writers, "1")
    with writers() as s:
        row = s.get_one(JobRow, job_id)
        row.status = JobStatus.UNDER_CONSTRUCTION
        with pytest.raises(Conflict, match="still being stored: delete it again in a moment"):
            jobs.hold_waiting(s, row, 999, jobs.Actor("ana", Role.ARTIST), "ana may not")
        s.rollback()

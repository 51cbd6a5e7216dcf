"""The Manager's core: the tasks it holds, handed out to its workers (workers.py), in memory and in SQLite.

Every worker request touches only this object and at most one SQLite write transaction; everything for the
Server goes into the durable outbox (store/outbox.py) and leaves in batches (server_link.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from services.manager import host_match, scheduler, server_orders, worker_controls
from services.manager.claim_sizing import ClaimSizer
from services.manager.config import ManagerConfig
from services.manager.errors import Conflict
from services.manager.model import HeldTask, RunLog, WorkerState
from services.manager.sleep import SleepSchedules
from services.manager.store import logs, outbox
from services.manager.store import tasks as store
from services.manager.store.db import set_meta, transaction
from services.manager.taken_back import TakenBack
from services.manager.workers import WorkerRegistry
from services.protocol.link import ClaimedTask, ClaimRequest, TaskUpdate
from services.protocol.states import TaskStatus, WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import Heartbeat, SignOnAnswer, SignOnRequest, StatusAnswer

log = logging.getLogger(__name__)

# a waiting task request: the worker, its answer, and for a prefetch the task it is running (None: it is idle)
Waiter = tuple[WorkerState, "asyncio.Future[HeldTask | None]", int | None]


def _release(worker: WorkerState, task_id: int) -> bool:
    """The task left the worker: a finished current one makes its prefetched next one current."""
    if worker.current_task_id == task_id:
        worker.current_task_id, worker.next_task_id = worker.next_task_id, None
        return True
    if worker.next_task_id == task_id:
        worker.next_task_id = None
        return True
    return False


def _resolve(fut: asyncio.Future[HeldTask | None], value: HeldTask | None) -> None:
    if not fut.done():
        fut.set_result(value)


class ManagerCore:
    def __init__(self, conn: sqlite3.Connection, config: ManagerConfig) -> None:
        self.conn = conn
        self.config = config
        self.tasks: dict[int, HeldTask] = {t.id: t for t in store.load_tasks(conn)}
        self.ready = scheduler.ReadyQueue()
        # set when a worker may want a task the Manager does not hold yet, or the workers changed (a claim
        # waiting at the Server may no longer fit them)
        self.claim_wakeup = asyncio.Event()
        self.workers = WorkerRegistry(conn, config, on_change=self.claim_wakeup.set)
        self.sleep = SleepSchedules(conn)
        self.blocklist = store.load_blocklist(conn)
        # entries the Server has not heard of since they changed (blocklist_sync.py); a fresh start reports all
        self.blocklist_dirty: set[tuple[int, str, str]] = set(self.blocklist)
        self.handout = store.max_handout(conn)
        self.waiters: dict[str, Waiter] = {}  # by worker id, oldest first
        self.feeding_due = False  # a task came back to the ready queue inside a transaction (feed_waiters)
        self.claims = ClaimSizer(config)  # how much to claim, from the workers and the hand-out rate
        self.taken_back = TakenBack()  # runs the Server took back from workers, whose completion may still come
        # set when there is something for the Server, or a worker is waiting for tasks
        self.link_wakeup = asyncio.Event()
        # a worker holds at most two: the earlier hand-out is the one it runs, the later its prefetched next
        for task in sorted(self.tasks.values(), key=lambda t: t.handout):
            worker = self.workers.get(task.worker_id)
            if worker is None or worker.next_task_id is not None:
                task.worker_id = None
                self.ready.add(task)
            elif worker.current_task_id is None:
                worker.current_task_id = task.id
            else:
                worker.next_task_id = task.id

    # --- workers: what their changes do to tasks --------------------------------------------------------------

    def sign_on(self, worker: WorkerState, req: SignOnRequest) -> SignOnAnswer:
        worker.name, worker.platform = req.name, req.platform
        worker.task_types = frozenset(req.task_types)
        # tags a wrangler gave the worker win over the ones it brings
        worker.tags = worker.tags_override if worker.tags_override is not None else frozenset(req.tags)
        worker.software = dict(req.software)
        worker.capabilities = req.capabilities
        worker.signed_on = True
        worker_controls.leaving_done(worker)  # it (re)started: a restart asked of it is done, a shutdown is over
        worker.status = (
            WorkerStatus.AWAKE if worker.status_requested != WorkerStatusRequest.ASLEEP else (WorkerStatus.ASLEEP)
        )
        with self.writing():
            self.workers.came_or_went(worker)
            host_match.save(self.conn, worker)
            for task in self.ready:  # what it offers may meet tasks that waited for such a worker
                if task.unmeetable and host_match.meets(task, worker):
                    task.unmeetable = None
            self.feed_waiters()
        self.claim_wakeup.set()
        self.link_wakeup.set()  # the Server shows it at once
        variables = self.config.resolved_variables(worker.platform)
        return SignOnAnswer(
            status_requested=worker.status_requested, lazy=worker.lazy, variables=variables, last_seq=worker.last_seq,
            worker_timeout=self.config.worker_timeout,
        )  # fmt: skip

    def sign_off(self, worker: WorkerState) -> None:
        with self.writing():
            self.take_back(worker, "worker signed off")
            worker.signed_on = False
            worker.status = WorkerStatus.OFFLINE
            worker_controls.leaving_done(worker)
            self.workers.came_or_went(worker)
        self.link_wakeup.set()

    def heartbeat(self, worker: WorkerState, hb: Heartbeat) -> StatusAnswer:
        if hb.utilisation is not None:
            worker.utilisation = hb.utilisation
            self.workers.changed(worker)
        if hb.unavailable != worker.unavailable:
            worker.unavailable = hb.unavailable
            self.workers.changed(worker)
        if worker.next_task_id is not None and (hb.status == WorkerStatus.ASLEEP or hb.unavailable is not None):
            # it said it takes no new work: it will not start its prefetched task (it gives it back too)
            with self.writing():
                self.give_back_next(worker)
        if self.sleep.apply(worker, datetime.now().astimezone()):
            with self.writing():
                self.workers.save(worker)
        if hb.status != worker.status or self._request_fulfilled(worker, hb.status):
            worker.status = hb.status
            if self._request_fulfilled(worker, hb.status):
                worker.status_requested = None
            with self.writing():
                self.workers.save(worker)
                if worker.available:
                    self.feed_waiters()
        return StatusAnswer(status_requested=worker.status_requested, lazy=worker.lazy)

    @staticmethod
    def _request_fulfilled(worker: WorkerState, status: WorkerStatus) -> bool:
        req = worker.status_requested
        return req is not None and req.value == status.value

    def sweep_timeouts(self, now: float | None = None) -> list[str]:
        """Workers silent longer than the timeout go offline; their tasks go back to the ready queue."""
        gone = self.workers.silent(time.monotonic() if now is None else now)
        if gone:
            with self.writing():
                for worker in gone:
                    self.take_back(worker, f"worker {worker.name} timed out")
                    worker.status = WorkerStatus.OFFLINE
                    worker_controls.leaving_done(worker)
                    self.workers.save(worker)
        return [w.id for w in gone]

    def forget_workers(self, worker_ids: list[str]) -> None:
        """A wrangler forgot these workers: their records, credentials, schedules and blocklist entries go."""
        with self.writing():
            for worker in filter(None, map(self.workers.get, worker_ids)):
                self.take_back(worker, f"worker {worker.name} was forgotten")
                self.workers.forget(worker.id)
                worker_controls.forget_schedule_and_blocklist(self.sleep, self.blocklist, worker.id)
        self.claim_wakeup.set()

    def available_worker_ids(self) -> frozenset[str]:
        """The workers that may take new work now: what a claim waiting at the Server was asked for."""
        return frozenset(w.id for w in self.workers.available())

    # --- tasks: hand-out -------------------------------------------------------------------------------------

    def claim_request(self) -> ClaimRequest | None:
        """What to ask the Server for (claim_sizing.py)."""
        return self.claims.request(self.workers.available(), self.ready)

    def add_claimed(self, claims: list[ClaimedTask]) -> None:
        # A task a pause took back from here and a resume handed back (`resumes_attempt`): a run of the attempt
        # taken back that a worker here still has carries on as the new hand-out (the pause's order to drop it
        # never came), and one that completed stands for it; either way it is not run again.
        carried: list[tuple[HeldTask, ClaimedTask]] = []
        done: list[TaskUpdate] = []
        fresh: list[ClaimedTask] = []
        for c in claims:
            old = self.tasks.get(c.id)
            if _carries_on(old, c):
                assert old is not None
                carried.append((old, c))
            elif (completed := self.taken_back.stands_for(c)) is not None:
                done.append(completed)
            elif (back := self._given_back_to(c)) is not None:
                carried.append((back, c))  # its worker ran on, not told: it is its again
            else:
                fresh.append(c)
        # stored first, held after the commit: a claim the store could not keep (a full disk fails at COMMIT,
        # after everything else) is not run here, where nothing would tell a restarted Manager it had been
        with transaction(self.conn):
            for c in fresh:
                old = self.tasks.pop(c.id, None)
                if old is not None:  # the Server handed it out again: the old hand-out is stale
                    self.forget(old)
            store.insert_tasks(self.conn, [c for _, c in carried if c.id not in self.tasks] + fresh)
            store.save_claims(self.conn, [c for _, c in carried])
            for back, _ in carried:
                if back.id not in self.tasks:
                    store.save_task(self.conn, back)  # its worker, hand-out and start, as before it was let go
        with self.writing():
            for old, c in carried:
                old.claim = c  # its worker's updates now speak for this attempt
                if old.id not in self.tasks:
                    self.tasks[c.id] = old
                    worker = self.workers.get(old.worker_id)
                    assert worker is not None
                    worker.current_task_id = c.id
                    self.workers.changed(worker)
                if old.started:  # the Server refuses the start it heard for the attempt before: this one runs
                    done.append(self.update_for(old, status=TaskStatus.ACTIVE, activity="running on after a resume"))
            self.emit(done)
            for c in fresh:
                task = HeldTask(claim=c, failure_count=c.failure_count)
                self.tasks[c.id] = task
                self.ready.add(task)
                if task.requirements is not None and (why := host_match.why_none(task, self.workers)):
                    task.unmeetable = why
                    self.emit([self.update_for(task, activity=why)])
            self.feed_waiters()

    def _given_back_to(self, claim: ClaimedTask) -> HeldTask | None:
        """The run of the attempt a resume follows that this Manager let go while its worker ran it (the pause's
        order came), when that worker still runs it, not told, and holds nothing else as its current task."""
        run = self.taken_back.resumable(claim)
        if run is None:
            return None
        worker = self.workers.get(run.worker_id)
        if worker is None or worker.current_task_id is not None:
            return None
        self.taken_back.carried_on(claim.id)
        return HeldTask(
            claim=claim, worker_id=worker.id, handout=run.handout, started=run.started,
            failure_count=claim.failure_count, log=run.log,
        )  # fmt: skip

    def next_task(self, worker: WorkerState, *, prefetch: bool = False) -> HeldTask | None:
        """Hand the best ready task to this worker (the caller holds the write transaction).

        `prefetch`: as its next task, while it runs its current one (prefetch.py decides when that is allowed).
        """
        task = self._best_for(worker)
        if task is not None:
            self._assign(task, worker, prefetch=prefetch)
        return task

    def hand_out(self, worker: WorkerState, *, prefetch: bool = False) -> HeldTask | None:
        """The best ready task for this worker, handed out in a write of its own; a worker asking for a new task
        while it holds one has abandoned that one (and its prefetched one): they are taken back first.

        A hand-out whose COMMIT fails (a full disk) is undone: the worker hears of none (503) and the task is
        ready here, as the store says, not the worker's in memory alone (a restarted Manager would hand it out
        again while it ran)."""
        task: HeldTask | None = None
        try:
            with self.writing():
                if not prefetch and worker.current_task_id is not None:
                    self.take_back(worker, "the worker asked for a new task without finishing this one")
                task = self.next_task(worker, prefetch=prefetch)
        except Exception:
            if task is not None:
                self.undo_hand_out(worker, task)
            raise
        return task

    def undo_hand_out(self, worker: WorkerState, task: HeldTask) -> None:
        """A hand-out the store did not keep: the task is ready again and the worker's slot empty."""
        if _release(worker, task.id):
            self.workers.changed(worker)
        task.worker_id, task.started = None, False
        if task.id in self.tasks:
            self.ready.add(task)

    def _best_for(self, worker: WorkerState) -> HeldTask | None:
        if not worker.available:
            return None
        return scheduler.pick(
            self.ready, worker, self.blocklist, self.config.blocklist_threshold, self._others_could_run
        )

    async def wait_for_task(self, worker: WorkerState, wait: float, running: int | None = None) -> HeldTask | None:
        """Wait for a task for this worker; `running`: a prefetch while it runs that task."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[HeldTask | None] = loop.create_future()
        entry: Waiter = (worker, fut, running)
        self.supersede(worker)
        self.waiters[worker.id] = entry
        self.claim_wakeup.set()
        # a timer rather than wait_for(shield(...)): the request resumes one loop turn after its task is set,
        # which is what lets the claim loop send the worker's answer before its next claim (server_link.py)
        timer = loop.call_later(wait, _resolve, fut, None)
        try:
            return await fut
        except asyncio.CancelledError:
            # the worker went away while waiting: a task handed to it goes back to the queue
            task = fut.result() if fut.done() and not fut.cancelled() else None
            if task is not None:
                with self.writing():
                    if running is not None and worker.next_task_id == task.id:
                        self.give_back_next(worker)
                    else:
                        self.take_back(worker, "worker stopped waiting")
            raise
        finally:
            timer.cancel()
            if self.waiters.get(worker.id) is entry:
                del self.waiters[worker.id]

    def tell_waiting(self, worker: WorkerState) -> None:
        """End the worker's wait for a task (not a prefetch's): the answer carries its status request."""
        entry = self.waiters.get(worker.id)
        if entry is not None and entry[2] is None:
            _resolve(entry[1], None)

    def supersede(self, worker: WorkerState) -> None:
        """A worker has one task request at a time: an older one still waiting was given up by the worker (its
        connection dropped), and must not take a task the worker would never hear of."""
        old = self.waiters.pop(worker.id, None)
        if old is not None:
            _resolve(old[1], None)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction (or a part of the one open); tasks that come back to the ready queue inside go to
        waiting workers once it has committed (feed_waiters)."""
        with transaction(self.conn):
            yield
        if self.feeding_due:
            try:
                self.feed_waiters()
            except sqlite3.Error as exc:
                # what the caller wrote is stored: its request succeeded. The hand-outs were undone and the
                # workers wait on; the next write feeds them (the store's trouble is the link's to report)
                self.feeding_due = True
                log.debug("waiting workers not fed: %s", exc)

    def feed_waiters(self) -> None:
        """Hand ready tasks to waiting workers, in a transaction of their own: inside another one they wait for
        its end (`writing`), and a worker hears of its task only once the hand-out is stored. A hand-out the
        store did not keep (a full disk fails the COMMIT) is undone and the worker waits on; a worker running a
        task the store does not say is its would run it beside the copy a restarted Manager hands out."""
        if self.conn.in_transaction:
            self.feeding_due = True
            return
        self.feeding_due = False
        if not self.waiters or not self.ready:
            return
        handed: list[tuple[Waiter, HeldTask, int]] = []  # and the task's hand-out number before
        try:
            with transaction(self.conn):
                for entry in list(self.waiters.values()):
                    worker, fut, running = entry
                    if fut.done():
                        continue
                    if running is None:
                        wants = worker.current_task_id is None
                    else:
                        wants = worker.current_task_id == running and worker.next_task_id is None
                    if wants and (task := self._best_for(worker)) is not None:
                        handed.append((entry, task, task.handout))
                        self._assign(task, worker, prefetch=running is not None)
                    if not self.ready:
                        break
        except BaseException:
            for (worker, _, _), task, handout in reversed(handed):
                task.handout = handout
                self.undo_hand_out(worker, task)
            raise
        for entry, task, _ in handed:
            worker, fut, _ = entry
            if self.waiters.get(worker.id) is entry:
                del self.waiters[worker.id]
            fut.set_result(task)

    def _others_could_run(self, task: HeldTask) -> bool:
        return any(
            w.available
            and w.id not in task.failed_on
            and scheduler.can_run(task, w, self.blocklist, self.config.blocklist_threshold)
            for w in self.workers
        )

    def _assign(self, task: HeldTask, worker: WorkerState, *, prefetch: bool = False) -> None:
        self.handout += 1
        self.claims.handed_out()
        set_meta(self.conn, "handout", str(self.handout))
        self.ready.remove(task)
        task.worker_id, task.handout, task.started = worker.id, self.handout, False
        task.log = RunLog()
        if prefetch:
            worker.next_task_id = task.id
        else:
            worker.current_task_id = task.id
        self.claim_wakeup.set()
        store.save_task(self.conn, task)
        logs.rotate(self.conn, task.id, self.config.log_keep_handouts)
        self.workers.changed(worker)

    # --- tasks: taking back, finishing -----------------------------------------------------------------------

    def take_back(self, worker: WorkerState, reason: str) -> None:
        """The worker lost its tasks (timeout, sign-off, abandoned): a started one counts as a soft failure; a
        prefetched one, never started, goes back to the ready queue."""
        self.give_back_next(worker)
        task = self.tasks.get(worker.current_task_id) if worker.current_task_id is not None else None
        worker.current_task_id = None
        if task is None or task.worker_id != worker.id:
            return
        if task.started:
            self.fail(task, worker, reason, blocklist=False)
        else:
            self._back_to_ready(task)

    def fail(self, task: HeldTask, worker: WorkerState, reason: str, *, blocklist: bool = True) -> None:
        c = task.claim
        task.failure_count += 1
        task.failed_on.add(worker.id)
        if blocklist:
            key = (c.job_id, worker.id, c.type)
            self.blocklist[key] = self.blocklist.get(key, 0) + 1
            store.add_blocklist_failure(self.conn, *key)
            self.blocklist_dirty.add(key)
        final = task.failure_count >= c.max_task_failures
        status = TaskStatus.FAILED if final else TaskStatus.SOFT_FAILED
        self.emit([self.update_for(task, status=status, activity=reason, failure_count=task.failure_count)])
        if final:
            self.finish(task)
        else:
            self._back_to_ready(task)
        if _release(worker, task.id):
            self.workers.changed(worker)
        if blocklist:
            self._give_back_unrunnable(c.job_id, c.type)

    def _give_back_unrunnable(self, job_id: int, task_type: str) -> None:
        """Every worker here that could run this job's tasks of this type is blocklisted for it: those tasks go
        back to the Server, which offers them to other Managers or fails them with the reason (else they would
        wait here for ever, their leases renewed by every keep-alive)."""
        threshold = self.config.blocklist_threshold
        stuck: list[HeldTask] = []
        for task in self.ready:
            c = task.claim
            if c.job_id != job_id or c.type != task_type:
                continue
            capable = [w for w in self.workers if c.type in w.task_types and w.tags.issuperset(c.job_tags)]
            if capable and all(self.blocklist.get((job_id, w.id, c.type), 0) >= threshold for w in capable):
                stuck.append(task)
        if not stuck:
            return
        why = f"no worker of manager {self.config.name} may run it: all are blocklisted for this job"
        self.emit([self.update_for(t, status=TaskStatus.QUEUED, activity=why, unrunnable_here=True) for t in stuck])
        for task in stuck:
            self.forget(task)

    def _back_to_ready(self, task: HeldTask) -> None:
        task.worker_id, task.started = None, False
        store.save_task(self.conn, task)
        self.ready.add(task)
        self.feed_waiters()

    def finish(self, task: HeldTask) -> None:
        """The task leaves this Manager (done, failed, given back): its final update is already queued."""
        self.forget(task)

    def forget(self, task: HeldTask) -> None:
        self.tasks.pop(task.id, None)
        self.ready.remove(task)
        worker = self.workers.get(task.worker_id)
        if worker is not None and _release(worker, task.id):
            self.workers.changed(worker)
        task.worker_id = None
        store.delete_task(self.conn, task.id)

    def give_back(self, worker: WorkerState, task: HeldTask) -> None:
        """The worker gives back a task it never started: it waits in the ready queue for another worker."""
        if _release(worker, task.id):
            self.workers.changed(worker)
        self._back_to_ready(task)

    def give_back_next(self, worker: WorkerState) -> None:
        """The worker's prefetched task goes back to the ready queue (it was never started)."""
        task = self.tasks.get(worker.next_task_id) if worker.next_task_id is not None else None
        worker.next_task_id = None
        self.workers.changed(worker)
        if task is not None and task.worker_id == worker.id:
            self._back_to_ready(task)

    # orders from the Server and its wranglers (server_orders.py)
    def reset_blocklist(self, job_ids: list[int]) -> None:
        server_orders.reset_blocklist(self, job_ids)

    def reprioritize(self, priorities: dict[int, int]) -> None:
        server_orders.reprioritize(self, priorities)

    def drop(self, task_ids: list[int], attempt: int | None = None, *, canceled: bool = False) -> None:
        server_orders.drop(self, task_ids, attempt, canceled=canceled)

    def give_back_ready(self) -> int:
        return server_orders.give_back_ready(self)

    def update_for(self, task: HeldTask, **fields: Any) -> TaskUpdate:
        worker = self.workers.get(task.worker_id)
        return TaskUpdate(
            task_id=task.id,
            attempt=task.claim.attempt,
            worker_id=worker.id if worker else None,
            worker_name=worker.name if worker else None,
            time=datetime.now(UTC),
            **fields,
        )

    def emit(self, updates: list[TaskUpdate]) -> None:
        if updates:
            outbox.enqueue(self.conn, updates)
            self.link_wakeup.set()

    def ensure_worker_not_busy(self, worker: WorkerState) -> None:
        if not worker.signed_on:
            raise Conflict("this worker has not signed on: call /api/v1/worker/sign-on first", "worker")


def _carries_on(old: HeldTask | None, claim: ClaimedTask) -> bool:
    """The claim hands back, after a resume, the attempt a worker here is running (add_claimed)."""
    return (
        old is not None
        and claim.resumes_attempt is not None
        and old.claim.attempt == claim.resumes_attempt
        and old.worker_id is not None
    )

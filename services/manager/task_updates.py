"""Applies a worker's batch of task updates: fencing, dedup by seq, the full log, and updates for the Server."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass

from services.manager import log_cap
from services.manager.core import ManagerCore
from services.manager.errors import Conflict, Invalid
from services.manager.model import HeldTask, WorkerState
from services.manager.store import previews
from services.manager.store import tasks as store
from services.manager.taken_back import Run
from services.protocol.common import utcnow
from services.protocol.link import LOG_TAIL_LINES, TaskUpdate
from services.protocol.preview import PreviewReport, is_image
from services.protocol.states import TaskStatus
from services.protocol.worker_api import LOG_LINE_MAX_CHARS, WorkerTaskUpdate

WORKER_STATUSES = (TaskStatus.ACTIVE, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.QUEUED)
# How far past the worker's last seq a batch may go. A worker numbers its updates one by one (2**40 is a thousand
# updates a second for 35 years); one that jumped to the highest seq the wire takes was acknowledged, and every
# later update of that worker was a "repeat", acknowledged and dropped: its completions lost, its tasks
# soft-failed when it asked for the next.
SEQ_JUMP_MAX = 2**40


def validate(updates: list[WorkerTaskUpdate], prefix: str = "updates") -> None:
    """Checks pydantic cannot express: seq strictly increasing, statuses a worker may send, line lengths."""
    for i, u in enumerate(updates):
        if i and u.seq <= updates[i - 1].seq:
            raise Invalid(f"seq must increase within a batch: {u.seq} after {updates[i - 1].seq}", f"{prefix}[{i}].seq")
        if u.status is not None and u.status not in WORKER_STATUSES:
            raise Invalid(f"a worker may not set status {u.status.value!r}", f"{prefix}[{i}].status")
        for j, line in enumerate(u.log_lines):
            if len(line) > LOG_LINE_MAX_CHARS:
                raise Invalid(f"log line longer than {LOG_LINE_MAX_CHARS} characters", f"{prefix}[{i}].log_lines[{j}]")
        if u.preview is not None and not is_image(u.preview.content_type, u.preview.data):
            raise Invalid(f"the preview is not a {u.preview.content_type} image", f"{prefix}[{i}].preview.data")


def held_by(core: ManagerCore, worker: WorkerState, task_id: int) -> HeldTask:
    task = core.tasks.get(task_id)
    if task is None or task.worker_id != worker.id:
        raise Conflict(f"task {task_id} is not assigned to this worker: stop it", "task_id")
    return task


def apply(core: ManagerCore, worker: WorkerState, task_id: int, updates: list[WorkerTaskUpdate]) -> int:
    """Apply the updates not seen before (seq > the worker's last); returns the worker's last seq."""
    validate(updates)
    new = [u for u in updates if u.seq > worker.last_seq]
    if new and new[-1].seq - worker.last_seq > SEQ_JUMP_MAX:
        raise Invalid(
            f"seq {new[-1].seq} jumps more than 2**40 past this worker's last ({worker.last_seq})",
            f"updates[{updates.index(new[-1])}].seq",
        )
    if not new:
        # All repeats: nothing is stored twice. Seqs are the worker's own, so a batch for another worker's task
        # may look like a repeat: it is refused as a new one would be, not acknowledged. A task no worker holds
        # (finished, given back: what a repeat whose answer was lost usually finds) is acknowledged.
        held = core.tasks.get(task_id)
        if held is not None and held.worker_id is not None and held.worker_id != worker.id:
            raise Conflict(f"task {task_id} is not assigned to this worker: stop it", "task_id")
        return worker.last_seq
    held = core.tasks.get(task_id)
    if (held is None or held.worker_id != worker.id) and (late := core.taken_back.completion(worker, task_id, new)):
        _forward_late(core, worker, *late, new)
        return worker.last_seq
    task = held_by(core, worker, task_id)
    for u in new:
        if u.handout != task.handout:
            raise Conflict(
                f"hand-out {u.handout} of task {task_id} is stale (current: {task.handout}): stop it",
                f"updates[{updates.index(u)}].handout",
            )
    before = _Before.of(worker, task)
    try:
        with core.writing():
            outgoing = _apply(core, worker, task, new)
            worker.last_seq = new[-1].seq
            store.save_worker_seq(core.conn, worker.id, worker.last_seq)
            core.emit(outgoing)
    except Exception:
        before.restore(core, worker, task)
        raise
    return worker.last_seq


def _forward_late(
    core: ManagerCore, worker: WorkerState, run: Run, update: TaskUpdate, new: list[WorkerTaskUpdate]
) -> None:
    """A run the Server took back completed before its worker heard: its log is kept and its completion goes to
    the Server, which decides (taken_back.py). When a resume has handed the task back here meanwhile, the
    completion stands for that hand-out, which is not run (or stops: its worker hears at its next update)."""
    held = core.tasks.get(run.task_id)
    resumed = held is not None and held.claim.resumes_attempt == run.attempt
    with core.writing():
        if resumed:
            assert held is not None
            update = update.model_copy(update={"attempt": held.claim.attempt})
            core.forget(held)
        lines = [line for u in new for line in u.log_lines]
        if lines:
            log_cap.append(core.conn, run.task_id, run.handout, run.log, lines, core.config.max_task_log_chars)
        worker.last_seq = new[-1].seq
        store.save_worker_seq(core.conn, worker.id, worker.last_seq)
        core.emit([update])


@dataclass(frozen=True)
class _Before:
    """What applying a batch changes in memory as it goes, for when its transaction then fails (a full disk fails
    the COMMIT, after everything else). Left changed, the retry of the same updates would be taken for repeats
    (the worker's seq had moved) and acknowledged, and a finished task, no longer held here, would be renewed
    no more and run again after its lease: the worker would have dropped a result nothing had stored."""

    last_seq: int
    current_task_id: int | None
    next_task_id: int | None
    task_worker_id: str | None
    started: bool
    failure_count: int
    failed_on: frozenset[str]

    @classmethod
    def of(cls, worker: WorkerState, task: HeldTask) -> _Before:
        return cls(worker.last_seq, worker.current_task_id, worker.next_task_id, task.worker_id, task.started,
                   task.failure_count, frozenset(task.failed_on))  # fmt: skip

    def restore(self, core: ManagerCore, worker: WorkerState, task: HeldTask) -> None:
        # nothing was handed out meanwhile (core.writing): the task is the worker's again, as it was
        worker.last_seq = self.last_seq
        worker.current_task_id, worker.next_task_id = self.current_task_id, self.next_task_id
        task.worker_id, task.started = self.task_worker_id, self.started
        task.failure_count, task.failed_on = self.failure_count, set(self.failed_on)
        if task in core.ready:
            core.ready.remove(task)
        core.tasks[task.id] = task
        core.workers.changed(worker)
        # a failure also counted towards the blocklist and may have given back the job's other tasks: the store,
        # rolled back, still has them as they were
        with contextlib.suppress(sqlite3.Error):
            core.blocklist = store.load_blocklist(core.conn)
            for kept in store.load_tasks(core.conn):
                if kept.id not in core.tasks:
                    kept.worker_id = None
                    core.tasks[kept.id] = kept
                    core.ready.add(kept)


def _apply(core: ManagerCore, worker: WorkerState, task: HeldTask, new: list[WorkerTaskUpdate]) -> list[TaskUpdate]:
    out: list[TaskUpdate] = []
    cur = core.update_for(task)
    tail: list[str] = []
    touched = False

    def flush() -> None:
        nonlocal cur, tail, touched
        if touched:
            cur.log_tail = tail[-LOG_TAIL_LINES:]
            out.append(cur)
        cur, tail, touched = core.update_for(task), [], False

    for u in new:
        if u.preview is not None:
            c = task.claim
            report = PreviewReport(
                task_id=c.id, job_id=c.job_id, worker_id=worker.id, worker_name=worker.name, time=utcnow(),
                preview=u.preview,
            )  # fmt: skip
            previews.keep(core.conn, report)
            core.link_wakeup.set()
        if u.log_lines:
            log_cap.append(core.conn, task.id, task.handout, task.log, u.log_lines, core.config.max_task_log_chars)
            tail.extend(u.log_lines)
            touched = True
        for name in ("activity", "steps_done", "steps_total"):
            value = getattr(u, name)
            if value is not None:
                setattr(cur, name, value)
                touched = True
        if u.status is None or (u.status == TaskStatus.ACTIVE and task.started):
            continue
        if cur.status is not None:
            flush()
        if u.status == TaskStatus.ACTIVE:
            task.started = True
            cur.status = TaskStatus.ACTIVE
            cur.started = task.worker_time(u)
            touched = True
            store.save_task(core.conn, task)
        elif u.status == TaskStatus.COMPLETED:
            cur.status = TaskStatus.COMPLETED
            cur.time = task.worker_time(u)
            cur.steps_done = cur.steps_done if cur.steps_done is not None else task.claim.steps_total
            touched = True
            core.taken_back.note_completion(cur)
            flush()
            core.finish(task)
            return out
        elif u.status == TaskStatus.QUEUED and not task.started:
            # given back before it started (a prefetched task of a worker going to sleep, pausing, stopping):
            # back to this Manager's ready queue, for another worker; the Server saw it only as leased
            core.give_back(worker, task)
            return out
        elif u.status == TaskStatus.QUEUED:
            # the worker gives the task back (stopped by its user): back to the Server's queue
            cur.status = TaskStatus.QUEUED
            touched = True
            flush()
            core.finish(task)
            return out
        else:  # failed: soft-failed and retried, or failed for good (ManagerCore.fail decides)
            flush()
            core.emit(out)  # the log lines before the failure go first
            core.fail(task, worker, u.activity or "the task failed")
            return []
    flush()
    return out

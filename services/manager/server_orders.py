"""What the Server and its wranglers order about tasks a Manager holds: cancel, requeue, reprioritise, give back.

Functions over the ManagerCore (core.py), which calls them; each runs in the core's write transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Protocol

from services.manager.model import HeldTask
from services.manager.scheduler import Blocklist, ReadyQueue
from services.manager.store import tasks as store
from services.manager.taken_back import TakenBack
from services.protocol.link import TaskUpdate
from services.protocol.states import TaskStatus


class ManagerCore(Protocol):
    """What these orders use of services.manager.core.ManagerCore (named here so the core may import us)."""

    conn: sqlite3.Connection
    tasks: dict[int, HeldTask]
    ready: ReadyQueue
    blocklist: Blocklist
    blocklist_dirty: set[tuple[int, str, str]]  # entries the Server has not heard of since they changed
    taken_back: TakenBack

    def feed_waiters(self) -> None: ...
    def writing(self) -> contextlib.AbstractContextManager[None]: ...
    def forget(self, task: HeldTask) -> None: ...
    def emit(self, updates: list[TaskUpdate]) -> None: ...
    def update_for(self, task: HeldTask, **fields: Any) -> TaskUpdate: ...


def reset_blocklist(core: ManagerCore, job_ids: list[int]) -> None:
    """A wrangler requeued these jobs: every worker may try them again."""
    jobs = set(job_ids)
    for key in [k for k in core.blocklist if k[0] in jobs]:
        del core.blocklist[key]
        core.blocklist_dirty.add(key)  # reported as gone
    with core.writing():
        store.clear_blocklist(core.conn, sorted(jobs))
        core.feed_waiters()  # a waiting worker may take one of their tasks now


def reprioritize(core: ManagerCore, priorities: dict[int, int]) -> None:
    """A wrangler changed these jobs' priorities: their held tasks take their new place in the ready queue."""
    changed = [
        t
        for t in core.tasks.values()
        if t.claim.job_id in priorities and t.claim.job_priority != priorities[t.claim.job_id]
    ]
    if not changed:
        return
    with core.writing():
        for task in changed:
            ready = task in core.ready
            core.ready.remove(task)  # its place depends on the priority: out under the old key
            task.claim = task.claim.model_copy(update={"job_priority": priorities[task.claim.job_id]})
            if ready:
                core.ready.add(task)
        store.save_claims(core.conn, [t.claim for t in changed])
        core.feed_waiters()


def drop(core: ManagerCore, task_ids: list[int], attempt: int | None = None, *, canceled: bool = False) -> None:
    """The Server canceled these tasks or refused our update: stop holding them.

    A canceled task that was running is reported back as canceled (the Server waits for that report);
    its worker learns it from its next update (409) or may-i-run.
    """
    with core.writing():
        for task_id in task_ids:
            task = core.tasks.get(task_id)
            if task is None or (attempt is not None and task.claim.attempt != attempt):
                continue
            if canceled and task.started:
                core.emit([core.update_for(task, status=TaskStatus.CANCELED, activity="canceled")])
            core.taken_back.remember(task)  # a worker may still complete it before it hears (taken_back.py)
            core.forget(task)


def give_back_ready(core: ManagerCore) -> int:
    """On a clean shutdown: tasks not handed to a worker go back to the Server's queue."""
    with core.writing():
        back = list(core.ready)
        core.emit([core.update_for(t, status=TaskStatus.QUEUED) for t in back])
        for task in back:
            core.forget(task)
    return len(back)

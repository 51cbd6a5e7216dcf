"""The lease-expiry sweep: tasks whose Manager went silent go back to the queue (or fail, at their limit).

Listed with the Server's other sweeps in services/server/app.py; every Server process runs it.
"""

from __future__ import annotations

import time

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.states import TaskStatus
from services.server.db.tables import JobRow, TaskRow
from services.server.states.tasks import HELD
from services.server.store.job_counts import lock_counters, read_locked
from services.server.store.tasks import set_task_status


def expire_leases(session: Session, lease_seconds: float, *, started: float, limit: int = 1000) -> int:
    """Tasks whose Manager went silent go back to `queued`, still naming it; a started one counts as a soft failure.

    For one lease period after the Server started, or resumed after a stall (`started`, a `time.monotonic()`;
    background.Awake), nothing expires: Managers that kept working while the Server was away get the chance to
    renew first.
    """
    if time.monotonic() - started < lease_seconds:
        return 0
    now = utcnow()
    q = (
        select(TaskRow)
        .where(text("tasks.lease_expires IS NOT NULL"), TaskRow.lease_expires < now)
        .order_by(TaskRow.lease_expires)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # every Server process runs this sweep: each task expires in exactly one of them (a second would count
        # the soft failure twice), and a Manager's update renewing the lease meanwhile is not waited for
        q = q.with_for_update(skip_locked=True)
    rows = [read_locked(session, task) for task in session.scalars(q)]
    for task in rows:
        if TaskStatus(task.status) not in HELD:
            task.lease_expires = None
            continue
        job = session.get_one(JobRow, task.job_id)
        if not lock_counters(session, job, skip_locked=True):
            # holding task rows, this sweep never waits for a job's: a wrangler's action holding the job and
            # waiting for this task deadlocked with it. The task expires at the next round.
            continue
        if TaskStatus(task.status) == TaskStatus.ACTIVE:
            task.failure_count += 1
        if task.failure_count >= job.max_task_failures:
            set_task_status(
                session, task, TaskStatus.FAILED, actor="server", activity="failed: its Manager went silent", job=job
            )
        else:
            holder = task.manager_id
            set_task_status(
                session, task, TaskStatus.QUEUED, actor="server", activity="requeued: its Manager went silent", job=job
            )
            # named until a claim hands it out again, as a pause names it: a Manager that was only slow (stopped,
            # its answers delayed) may still report the run as completed, or claim the task back and carry the run
            # on (claim's resumes_attempt), rather than render it again (link.finished_after_stop)
            task.manager_id = holder
    return len(rows)

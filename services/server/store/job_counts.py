"""The job's task counters read under the job row's lock before a status change moves them (PostgreSQL).

`set_task_status` keeps a job's denormalised counters by adding and subtracting in Python. Two transactions that
loaded the same job row (two Servers on one database, or two request threads of one) would each add to the value
they read, and the later commit would undo the earlier one's change: with two Servers, 3,000 completed tasks
left a job at `tasks_completed` 1,950, never completing it. So before a transaction's first change to a job's
counters, the row is locked (`FOR UPDATE`, held to the commit) and the counters re-read from it. SQLite has one
writer at a time, so the values it loaded are already the latest.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from services.server.db.tables import JobRow

COUNTERS = ("tasks_total", "tasks_completed", "tasks_failed", "tasks_canceled", "tasks_active")
_LOCKED = "tablao_locked_job_counters"


def lock_counters(session: Session, job: JobRow) -> None:
    """Lock the job's row (once per transaction) and load its current counters into `job`."""
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    held: tuple[object, set[int]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = session.info[_LOCKED] = (transaction, set())
    if job.id in held[1]:
        return
    columns = [getattr(JobRow, name) for name in COUNTERS]
    with session.no_autoflush:  # a flush here would write values computed from what may be stale
        row = session.execute(select(*columns).where(JobRow.id == job.id).with_for_update()).one()
    state = inspect(job)
    for name, value in zip(COUNTERS, row, strict=True):
        if not state.attrs[name].history.has_changes():  # this transaction's own changes stay
            set_committed_value(job, name, value)
    held[1].add(job.id)

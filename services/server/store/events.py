"""The farm's event stream: events are rows written in the same transaction as the change they describe.

Writers call `publish()` (or `mark_job_dirty()`, which coalesces many changes of one job into one
job-updated event at commit). Readers (the SSE endpoint) read rows after a Last-Event-ID; `EventNotifier`
wakes them in-process right after a commit; on PostgreSQL, commits of other Server processes wake them through
a notice (db/notify.py), and they poll as a fallback. Nothing is written unless `install()` put the hooks on
the session factory (the app factory does).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, event, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import utcnow
from services.server.db import notify
from services.server.db.tables import EventRow, JobRow
from services.server.store.convert import job_to_wire

_DIRTY_JOBS = "tablao_dirty_jobs"
_PENDING = "tablao_pending_events"
_WRITTEN = "tablao_events_written"
_KEPT = "tablao_events_kept"  # events of committed savepoints, written at the outermost commit


def publish(session: Session, type_: str, data: dict[str, Any]) -> None:
    """Queue an event; it is written just before the session commits, in the same transaction."""
    session.info.setdefault(_PENDING, []).append((type_, data))


def mark_job_dirty(session: Session, job: JobRow) -> None:
    session.info.setdefault(_DIRTY_JOBS, {})[job.id] = job


def _job_event_data(job: JobRow) -> dict[str, Any]:
    # no settings: they never change after submission (job-created carries them), and they may be large
    return job_to_wire(job).model_dump(mode="json", exclude={"settings"})


def install(sessions: sessionmaker[Session], notifier: EventNotifier | None) -> None:
    """Write the queued events of the factory's sessions at commit and wake `notifier`'s readers after it."""
    event.listen(sessions, "before_commit", _write_events)
    event.listen(sessions, "after_rollback", forget)
    if notifier is not None:
        event.listen(sessions, "after_commit", notifier.after_commit)


def _write_events(session: Session) -> None:
    dirty: dict[int, JobRow] = session.info.pop(_DIRTY_JOBS, {})
    pending: list[tuple[str, dict[str, Any]]] = session.info.pop(_PENDING, [])
    for job in dirty.values():
        if job in session and job not in session.deleted:
            pending.append(("job-updated", _job_event_data(job)))
    if session.in_nested_transaction():
        # A savepoint's commit: its events are written at the outermost one. Written here, they took the farm-wide
        # event lock (PostgreSQL) at a bulk action's first job and held it while the action locked the next jobs,
        # and every other writer of those jobs deadlocked with it (half of the bulk actions answered 503).
        session.info.setdefault(_KEPT, []).extend(pending)
        return
    pending = session.info.pop(_KEPT, []) + pending
    if not pending:
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Serialise event writers so ids become visible in order: a reader never skips an id that
        # commits later than a higher one.
        session.execute(text("SELECT pg_advisory_xact_lock(7316)"))
        notify.send(session)  # other Server processes wake their readers and waiting claims at the commit
    now = utcnow()
    session.execute(insert(EventRow), [{"time": now, "type": t, "data": d} for t, d in pending])
    session.info[_WRITTEN] = True


def wake_at_commit(session: Session) -> None:
    """Wake the waiting claims and readers of every Server process when this transaction commits, though it
    writes no event (an instruction for a Manager: its waiting claim ends to collect it, store/instructions.py)."""
    if session.get_bind().dialect.name == "postgresql":
        notify.send(session)
    session.info[_WRITTEN] = True


def forget(session: Session) -> None:
    session.info.pop(_DIRTY_JOBS, None)
    session.info.pop(_PENDING, None)
    if not session.in_nested_transaction():  # what earlier savepoints committed is still to be written
        session.info.pop(_WRITTEN, None)
        session.info.pop(_KEPT, None)


class EventNotifier:
    """Wakes SSE readers of this process when events were committed (from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def after_commit(self, session: Session) -> None:
        # SQLAlchemy calls this for a savepoint's release too; readers are woken when the outermost transaction
        # commits, or they would look before the events are visible and not be told again
        if session.in_nested_transaction():
            return
        if session.info.pop(_WRITTEN, False):
            self.notify()

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, ev in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(ev.set)

    async def wait(self, max_wait: float) -> None:
        with self.subscribe() as ev, contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait):  # not wait_for, which can lose a cancel on 3.11
                await ev.wait()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        """An event set at every commit with events while the block runs; clear it before each look."""
        ev = asyncio.Event()
        key = (asyncio.get_running_loop(), ev)
        with self._lock:
            self._waiters.add(key)
        try:
            yield ev
        finally:
            with self._lock:
                self._waiters.discard(key)


def read_after(session: Session, last_id: int, limit: int = 1000) -> list[EventRow]:
    rows = session.scalars(select(EventRow).where(EventRow.id > last_id).order_by(EventRow.id).limit(limit))
    return list(rows)


def oldest_id(session: Session) -> int | None:
    return session.scalar(select(func.min(EventRow.id)))


def newest_id(session: Session) -> int:
    return session.scalar(select(func.max(EventRow.id))) or 0


def prune(session: Session, retention_seconds: float) -> int:
    cutoff = utcnow() - timedelta(seconds=retention_seconds)
    # keep the newest event whatever its age, so ids never restart and resumes can tell a gap
    newest = newest_id(session)
    result = session.execute(delete(EventRow).where(EventRow.time < cutoff, EventRow.id < newest))
    return int(getattr(result, "rowcount", 0) or 0)

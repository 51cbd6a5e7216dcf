"""Utilisation history per worker and tasks completed per minute, kept for a day and pruned by a sweep.

A worker's samples are thinned as they arrive (at most one per `sample_seconds`), so the table holds at most
`history_seconds / sample_seconds` rows per worker: 2,880 a day at the default 30 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.farm import Utilisation
from services.protocol.workers import UtilisationHistory, UtilisationPoint
from services.server.db.tables import FarmMinuteRow, ForgottenWorkerRow, WorkerRow, WorkerSampleRow
from services.server.store.convert import aware

SAMPLE_SECONDS = 30.0
HISTORY_SECONDS = 24 * 3600.0
FUTURE_SECONDS = 300.0  # a sample dated further ahead than this is a wrong clock: not kept (it would never be pruned)


def as_utc(t: datetime) -> datetime | None:
    """The time in UTC (naive ones are taken as UTC); None when it cannot be one (year 1 with a +05:00 offset)."""
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)
    except OverflowError:
        return None


def record_sample(session: Session, worker: WorkerRow, u: Utilisation, sample_seconds: float = SAMPLE_SECONDS) -> bool:
    """Keep this sample when the worker's newest kept one is at least `sample_seconds` older; True if kept.

    Times are the worker's clock: one set back (newer samples with older times) starts the spacing afresh
    rather than silencing the worker until its clock catches up.
    """
    at = as_utc(u.time)
    now = utcnow()
    if at is None or not now - timedelta(seconds=HISTORY_SECONDS) <= at <= now + timedelta(seconds=FUTURE_SECONDS):
        return False  # outside what the history keeps
    last = worker.utilisation_sampled
    if last is not None and 0 <= (at - aware(last)).total_seconds() < sample_seconds:
        return False
    session.add(
        WorkerSampleRow(worker_id=worker.id, time=at, cpu=u.cpu_percent, memory=u.memory_percent, gpu=u.gpu_percent)
    )
    worker.utilisation_sampled = at
    return True


def history(
    session: Session, worker_id: str, since: datetime, limit: int, sample_seconds: float = SAMPLE_SECONDS
) -> UtilisationHistory:
    """The worker's samples since `since`, oldest first; with more than `limit`, the newest `limit`."""
    rows = session.scalars(
        select(WorkerSampleRow)
        .where(WorkerSampleRow.worker_id == worker_id, WorkerSampleRow.time >= since)
        .order_by(WorkerSampleRow.time.desc())
        .limit(limit)
    ).all()
    points = [
        UtilisationPoint(time=aware(r.time), cpu_percent=r.cpu, memory_percent=r.memory, gpu_percent=r.gpu)
        for r in reversed(rows)
    ]
    return UtilisationHistory(worker_id=worker_id, sample_seconds=sample_seconds, samples=points)


def forget_samples(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerSampleRow).where(WorkerSampleRow.worker_id == worker_id))


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def count_completed(session: Session, manager_id: int, n: int) -> None:
    """Add `n` completed tasks to this Manager's row of the current minute (its batches come one at a time)."""
    if n <= 0:
        return
    minute = _minute(utcnow())
    row = session.get(FarmMinuteRow, (minute, manager_id))
    if row is None:
        session.add(FarmMinuteRow(minute=minute, manager_id=manager_id, tasks_completed=n))
    else:
        row.tasks_completed += n


def tasks_per_minute(session: Session, minutes: int) -> float:
    """Tasks completed per minute over the last `minutes` whole minutes (the current one is still filling)."""
    now = _minute(utcnow())
    total = session.scalar(
        select(func.coalesce(func.sum(FarmMinuteRow.tasks_completed), 0)).where(
            FarmMinuteRow.minute >= now - timedelta(minutes=minutes), FarmMinuteRow.minute < now
        )
    )
    return round(int(total or 0) / minutes, 2)


def prune(session: Session, keep_seconds: float = HISTORY_SECONDS) -> int:
    """A housekeeping sweep: drop samples, minutes and forgotten-worker notes older than `keep_seconds`."""
    cutoff = utcnow() - timedelta(seconds=keep_seconds)
    gone = 0
    for table, column in (
        (WorkerSampleRow, WorkerSampleRow.time),
        (FarmMinuteRow, FarmMinuteRow.minute),
        (ForgottenWorkerRow, ForgottenWorkerRow.time),
    ):
        result = session.execute(delete(table).where(column < cutoff))
        gone += int(getattr(result, "rowcount", 0) or 0)
    return gone

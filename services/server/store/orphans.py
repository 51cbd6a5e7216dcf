"""Jobs left half-written: a Server stopped (killed, crashed, power cut) while it stored a job in chunks.

A job is written under construction, and its writer touches the job's `updated` with every chunk (the
heartbeat, store/submission.py). The sweep removes a job that is still under construction when nobody wrote
to it for longer than the bound (`orphan_seconds`), or, on SQLite, that was last written before this Server
started (one Server process per SQLite database, so no one else can be writing it). Jobs this process is
writing are never touched, whatever their age.

A job a wrangler canceled while it was being stored is removed the same way, at once: its writer, if alive,
stops at its next chunk and removes what it stored; if it was killed, the sweep does.

Removal goes in batches of short transactions (dependency rows, then tasks, from the job's last task back,
then its log and the job), marked in the job's activity and job log first, so the job's writer, if it is
alive after all, stops at its next chunk instead of finishing a job with holes. With several Servers on
PostgreSQL every Server runs the sweep: each batch locks the job's row (`FOR UPDATE SKIP LOCKED`), so two
sweeps take turns on one job and never remove the same rows twice; a sweep killed half-way is finished by
the next one, since the job still matches.

A client repeating the submission (the same Idempotency-Key, store/submit_keys.py) need not wait for the sweep's
bound: once the job's writer has been silent for `builder_silent_bound` (or, on SQLite, wrote last before this
Server started) the repeat takes the job over (`take_over`): marks it for removal and frees its key in one
conditional update, so of two repeats at once exactly one wins, then removes it and stores the submission anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.states import JobStatus
from services.server.db.tables import CanceledSubmitKeyRow, JobLogRow, JobRow, TaskDependencyRow, TaskRow
from services.server.store import events, id_floors
from services.server.store.tasks import log_job

log = logging.getLogger(__name__)

REMOVING = "orphaned: being removed"  # the activity of a job the sweep is removing
# the activity of a job a wrangler canceled while its tasks were being stored: it is removed, not kept canceled
# with part of its tasks (a requeue of what there was then "completed" it); the sweep removes it at once
CANCELED_UNBUILT = "canceled while its tasks were being stored: being removed"
REMOVAL_MARKS = (REMOVING, CANCELED_UNBUILT)
TASK_BATCH = 5_000  # tasks removed per transaction
DEPENDENCY_BATCH = 10_000  # dependency rows removed per transaction
SWEEPER = "server"  # the job log's author of the sweep's entry
# How long a job's writer may be silent before a repeat of its submission takes the job over. The writer touches
# the job with every chunk's transaction: 5,000 tasks compiled and written, well under a second, a few seconds on
# a loaded PostgreSQL. Its longest silence alive is one chunk plus a wait for a pooled connection, which gives up
# after 30 s (SQLAlchemy's pool timeout) and fails the build; and a Server stuck that long inside a transaction
# is ended by the database (`hung_after`, at most 30 s, services/server/app.py). So 60 s of silence is a writer
# that is dead or failing on its own, and still well within a client's minutes of repeating. A writer only slowed
# past it (a paused VM) loses nothing accepted: its next chunk finds the job marked and stops (submission.py).
BUILDER_SILENT = 60.0


class Builds:
    """The jobs this process is writing now; the sweep leaves them alone."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    @contextmanager
    def writing(self, job_id: int) -> Iterator[None]:
        with self._lock:
            self._ids.add(job_id)
        try:
            yield
        finally:
            with self._lock:
                self._ids.discard(job_id)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._ids)


def builder_silent_bound(orphan_seconds: float) -> float:
    """Seconds of a writer's silence after which a repeat of its submission takes the job over (BUILDER_SILENT,
    or the sweep's own bound when that is shorter: the sweep would remove the job then anyway)."""
    return min(BUILDER_SILENT, orphan_seconds)


def take_over(
    session: Session,
    job_id: int,
    *,
    submitter: str,
    key: str,
    bound: float,
    builds: Builds,
    started: datetime | None = None,
) -> bool:
    """Claims job `job_id`, still under construction for the submission `key`, for a repeat of that submission
    when its writer is dead: silent for `bound` seconds, or (`started`, SQLite) last heard of before this Server
    started, or found so by a sweep already removing it. In the caller's transaction: the job is marked for
    removal and its key freed, so the repeat stores the submission anew once the caller commits and removes the
    job (`remove_batch`). True if claimed; a live writer's job, one of this process's own builds, or one another
    repeat claimed first is left alone."""
    if job_id in builds.ids():
        return False  # written by this process: alive, however slowly
    silent = JobRow.updated < utcnow() - timedelta(seconds=bound)
    claimed = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.submitter == submitter,
            JobRow.submit_key == key,
            JobRow.status == JobStatus.UNDER_CONSTRUCTION.value,
            or_(
                # found an orphan already: a sweep is removing it (at a restart on SQLite it often starts first)
                JobRow.activity == REMOVING,
                and_(
                    JobRow.activity.not_in(REMOVAL_MARKS),
                    or_(silent, JobRow.updated < started) if started is not None else silent,
                ),
            ),
        )
        # one statement: on PostgreSQL a second repeat's update waits for the first's row lock, then finds the
        # job no longer matches (its key is gone), so exactly one repeat claims it
        .values(activity=REMOVING, submit_key=None)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    job = session.get_one(JobRow, job_id)
    message = (
        f"removed: left under construction by a Server that stopped writing it (last written "
        f"{_aware(job.updated):%Y-%m-%d %H:%M:%S} UTC); a repeat of its submission stores it anew"
    )
    log_job(session, job, SWEEPER, message)
    log.warning("job %d %r: %s", job.id, job.name, message)
    return True


def remove_batch(session: Session, job_id: int) -> bool:
    """Removes one batch of a job's rows, from its last task back; True while some are left. The job's own row
    and log go with the last batch. Safe to repeat, and on a job already gone."""
    if session.get_bind().dialect.name == "postgresql":
        # the job's row first, as the sweep does: two removers (a repeat's and a sweep, or a writer's own) take
        # turns on a job instead of deleting the same rows at once, which could deadlock
        session.execute(select(JobRow.id).where(JobRow.id == job_id).with_for_update())
    ids = session.scalars(
        select(TaskRow.id).where(TaskRow.job_id == job_id).order_by(TaskRow.index.desc()).limit(TASK_BATCH)
    ).all()
    if ids:
        # later tasks wait for earlier ones, never the reverse: none of the tasks left waits for these
        pairs = session.execute(
            select(TaskDependencyRow.task_id, TaskDependencyRow.depends_on_id)
            .where(TaskDependencyRow.task_id.in_(ids))
            .limit(DEPENDENCY_BATCH)
        ).all()
        if pairs:
            key = tuple_(TaskDependencyRow.task_id, TaskDependencyRow.depends_on_id)
            session.execute(delete(TaskDependencyRow).where(key.in_([tuple(p) for p in pairs])))
        if len(pairs) < DEPENDENCY_BATCH:
            id_floors.note_deleted(session, id_floors.TASKS, max(ids))
            session.execute(delete(TaskRow).where(TaskRow.id.in_(ids)))
        return True
    id_floors.note_deleted(session, id_floors.JOBS, job_id)
    _keep_canceled_key(session, job_id)
    session.execute(delete(JobLogRow).where(JobLogRow.job_id == job_id))
    session.execute(delete(JobRow).where(JobRow.id == job_id))
    return False


def _keep_canceled_key(session: Session, job_id: int) -> None:
    """A job canceled while it was being stored leaves its submission's key behind: a client repeating that
    submission is told of the cancel rather than building the job again (store/submit_keys.py)."""
    found = session.execute(
        select(JobRow.submitter, JobRow.submit_key).where(
            JobRow.id == job_id, JobRow.activity == CANCELED_UNBUILT, JobRow.submit_key.is_not(None)
        )
    ).first()
    if found is not None:
        submitter, key = found
        session.merge(CanceledSubmitKeyRow(submitter=submitter, submit_key=key, job_id=job_id, canceled=utcnow()))


def sweep(session: Session, *, bound: float, builds: Builds, started: datetime | None = None) -> bool:
    """One step of removing orphaned jobs, in the caller's transaction: True when there may be more to do.

    `started`: when this Server started, if it is the only one that can write the database (SQLite)."""
    now = utcnow()
    stale = JobRow.updated < now - timedelta(seconds=bound)
    marked = JobRow.activity.in_(REMOVAL_MARKS)  # canceled, or found an orphan already (a repeat took it over)
    stmt = select(JobRow).where(
        JobRow.status == JobStatus.UNDER_CONSTRUCTION.value,
        or_(stale, JobRow.updated < started, marked) if started is not None else or_(stale, marked),
    )
    if mine := builds.ids():
        stmt = stmt.where(JobRow.id.not_in(mine))
    stmt = stmt.order_by(JobRow.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)  # another Server's sweep has it: leave it to that one
    job = session.scalars(stmt).first()
    if job is None:
        return False
    if job.activity not in REMOVAL_MARKS:
        # `updated` stays as it was, so whichever Server sweeps next carries on where this one stopped
        idle = (now - _aware(job.updated)).total_seconds()
        message = (
            f"removed: left under construction (created {_aware(job.created):%Y-%m-%d %H:%M:%S} UTC, nothing "
            f"written to it for {idle:.0f} s; the Server writing it stopped before it was complete)"
        )
        log_job(session, job, SWEEPER, message)
        job.activity = REMOVING
        log.warning("job %d %r: %s", job.id, job.name, message)
        return True  # the mark is committed before any task goes, so a live writer stops at its next chunk
    if not remove_batch(session, job.id):
        events.publish(session, "job-deleted", {"id": job.id})
        log.warning("job %d %r: orphaned job removed", job.id, job.name)
    return True


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite gives them back without a zone

"""A job's failures at the Server: the blocklist its Managers report, and dependencies that will never complete.

The Manager decides who is blocklisted (it counts failures per job, worker and task type); the Server keeps
the copy its Managers report with their update batches, so the app can show it, and hands a wrangler's
"clear this entry" back to the Manager in the answer to its next batch (calls go bottom-up only). A Manager
speaks only for its own workers, on jobs not bound to another Manager: an entry any Manager token wrote for
another's worker hid that worker's real entry and took the wrangler's clear to the wrong Manager.

A job waits until the jobs it depends on have completed. When one of them fails or is canceled that would be
for ever, so the waiting job says so in its activity and job log, and may be released (the dependency
dropped) or canceled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import String, cast, delete, select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.failures import BlocklistEntry, BlocklistKey, BlocklistReport, Dependency, Unblock
from services.protocol.states import FINISHED_JOB_STATUSES, JobStatus
from services.server.db.tables import BlocklistRow, JobLogRow, JobRow, ManagerExclusionRow, ManagerRow, WorkerRow
from services.server.store import events
from services.server.store.convert import aware
from services.server.store.errors import Invalid
from services.server.store.now_and_then import NowAndThen, since_note

log = logging.getLogger(__name__)

BLOCKING = frozenset({JobStatus.FAILED, JobStatus.CANCELED, JobStatus.CANCEL_REQUESTED})


def _log(session: Session, job: JobRow, actor: str, message: str) -> None:
    session.add(JobLogRow(job_id=job.id, time=utcnow(), user=actor, message=message))


# ---- blocklist ------------------------------------------------------------------------------------------------


def apply_reports(session: Session, manager: ManagerRow, reports: list[BlocklistReport], complete: bool) -> None:
    """Store what a Manager reports; `complete`: these are all its entries, any other of its rows is gone.

    An entry is taken only for a worker of this Manager and a job not bound to another Manager; any other is
    skipped, the rest of the batch applies (a refused batch would be sent again for ever). The batch's worker
    reports are applied first, and a Manager sends a worker's state with its entry, so a new worker's row exists.
    """
    if not reports and not complete:
        return
    rows = {
        (r.job_id, r.worker_id, r.task_type): r
        for r in session.scalars(select(BlocklistRow).where(BlocklistRow.manager_id == manager.id))
    }
    job_ids = {r.job_id for r in reports}
    jobs = dict(session.execute(select(JobRow.id, JobRow.manager_id).where(JobRow.id.in_(job_ids))).tuples().all())
    worker_ids = {r.worker_id for r in reports}
    owners = dict(
        session.execute(select(WorkerRow.id, WorkerRow.manager_id).where(WorkerRow.id.in_(worker_ids))).tuples().all()
    )
    now = utcnow()
    seen = set()
    refused: list[str] = []
    for rep in reports:
        key = (rep.job_id, rep.worker_id, rep.task_type)
        seen.add(key)
        row = rows.get(key) or session.get(BlocklistRow, key)
        ours = row is not None and row.manager_id == manager.id
        if rep.failures == 0 or rep.job_id not in jobs:
            # gone: only this Manager's own row goes (a cleared one leaves with this batch's answer)
            if row is not None and ours and not row.clear_requested:
                session.delete(row)
            continue
        if (why := _not_its_own(manager, rep, owners.get(rep.worker_id), jobs[rep.job_id])) is not None:
            if why:
                refused.append(why)
            continue
        if row is not None and not ours:
            # written for this Manager's worker by another Manager (any Manager token could, before the check
            # above): the report of the worker's own Manager replaces it, and a wrangler's clear reaches it
            row.manager_id, row.clear_requested = manager.id, False
        elif row is not None and row.clear_requested:
            continue  # cleared: the Manager forgets it with this batch's answer and reports it gone
        if row is None:
            row = BlocklistRow(job_id=rep.job_id, worker_id=rep.worker_id, task_type=rep.task_type,
                               manager_id=manager.id, clear_requested=False)  # fmt: skip
            session.add(row)
        row.worker_name, row.failures, row.threshold, row.updated = rep.worker_name, rep.failures, rep.threshold, now
    if complete:
        for key, row in rows.items():
            if key not in seen and not row.clear_requested:
                session.delete(row)
    if refused:
        _warn_refused(manager, refused)
    session.flush()


_refused = NowAndThen(600.0)  # per Manager


def _warn_refused(manager: ManagerRow, refused: list[str]) -> None:
    """Only a Manager that speaks for others' workers or jobs gets here: worth a look at who holds its token. It
    reports all its entries again with each lease renewal, so one line per Manager every ten minutes at most."""
    if (since := _refused.due(manager.id)) is None:
        return
    log.warning(
        "manager %s reported %d blocklist entr%s not its own to report; ignored: %s%s",
        manager.name, len(refused), "y" if len(refused) == 1 else "ies", "; ".join(refused[:3]), since_note(since),
    )  # fmt: skip


def _not_its_own(manager: ManagerRow, rep: BlocklistReport, owner: int | None, pinned: int | None) -> str | None:
    """Why the Manager may not report this entry: a text to log, "" to skip it quietly; None: it may."""
    if owner is None:
        # a worker the Server has not heard of (yet, or forgotten by a wrangler): nobody's entry to show; the
        # Manager reports all its entries again with each lease renewal, after its workers' states
        return ""
    if owner != manager.id:
        return f"worker {rep.worker_id} belongs to another Manager (job {rep.job_id})"
    if pinned not in (None, manager.id):
        return f"job {rep.job_id} is bound to another Manager (worker {rep.worker_id})"
    return None


def take_unblocks(session: Session, manager: ManagerRow) -> list[Unblock]:
    """The entries a wrangler cleared that this Manager still has to forget; they leave the Server's copy now."""
    rows = session.scalars(
        select(BlocklistRow).where(BlocklistRow.manager_id == manager.id, BlocklistRow.clear_requested.is_(True))
    ).all()
    out = [Unblock(job_id=r.job_id, worker_id=r.worker_id, task_type=r.task_type) for r in rows]
    for row in rows:
        session.delete(row)
    return out


def entries(session: Session, job_id: int) -> list[BlocklistEntry]:
    q = (
        select(BlocklistRow, ManagerRow.name)
        .join(ManagerRow, ManagerRow.id == BlocklistRow.manager_id)
        .where(BlocklistRow.job_id == job_id, BlocklistRow.clear_requested.is_(False))
        .order_by(BlocklistRow.task_type, BlocklistRow.worker_name, BlocklistRow.worker_id)
    )
    out = []
    for r, name in session.execute(q):
        entry = BlocklistEntry(
            job_id=r.job_id, worker_id=r.worker_id, worker_name=r.worker_name or r.worker_id, task_type=r.task_type,
            failures=r.failures, threshold=r.threshold, blocked=r.failures >= r.threshold, manager_id=r.manager_id,
            manager_name=name, updated=aware(r.updated),
        )  # fmt: skip
        out.append(entry)
    return out


def clear(session: Session, job: JobRow, keys: Iterable[BlocklistKey], actor: str) -> int:
    """Mark entries cleared (their Managers are told next); the Managers they had shut out may claim again."""
    cleared = 0
    for key in dict.fromkeys((k.worker_id, k.task_type) for k in keys):
        row = session.get(BlocklistRow, (job.id, *key))
        if row is None or row.clear_requested:
            continue
        row.clear_requested = True
        cleared += 1
        name = row.worker_name or row.worker_id
        _log(session, job, actor, f"blocklist cleared: worker {name} may run {row.task_type} tasks again")
        # the Manager gave these tasks back when none of its workers could run them: it may take them again
        session.execute(
            delete(ManagerExclusionRow).where(
                ManagerExclusionRow.manager_id == row.manager_id,
                ManagerExclusionRow.job_id == job.id,
                ManagerExclusionRow.task_type == row.task_type,
            )
        )
    if cleared:
        events.mark_job_dirty(session, job)
    return cleared


def forget_job(session: Session, job_id: int) -> None:
    """A requeue resets the Managers' blocklists for the job (store.tasks.give_workers_another_chance)."""
    session.execute(delete(BlocklistRow).where(BlocklistRow.job_id == job_id))


# ---- dependencies ---------------------------------------------------------------------------------------------


def dependencies(session: Session, job: JobRow) -> list[Dependency]:
    ids = list(job.depends_on or [])
    found = {j.id: j for j in session.scalars(select(JobRow).where(JobRow.id.in_(ids)))} if ids else {}
    out = []
    for dep_id in ids:
        dep = found.get(dep_id)
        status = JobStatus(dep.status) if dep else None
        out.append(Dependency(job_id=dep_id, name=dep.name if dep else None, status=status,
                              blocking=status in BLOCKING))  # fmt: skip
    return out


def _blocked_message(dep: JobRow) -> str:
    what = "was canceled" if JobStatus(dep.status) != JobStatus.FAILED else "failed"
    return (
        f"waiting for job {dep.id} ({dep.name}), which {what}: it will not complete; "
        "release the dependency or cancel this job"
    )


def tell_dependents(session: Session, job: JobRow) -> None:
    """`job` failed or was canceled: the unfinished jobs waiting for it say so (they would wait silently)."""
    waiting = session.scalars(
        select(JobRow).where(
            JobRow.status.not_in([s.value for s in FINISHED_JOB_STATUSES]),
            JobRow.id != job.id,
            # a coarse filter in the database (the JSON list as text names the id), the exact check below
            cast(JobRow.depends_on, String).like(f"%{job.id}%"),
        )
    )
    for other in waiting:
        if job.id in (other.depends_on or []):
            message = _blocked_message(job)
            other.activity = message
            _log(session, other, "server", message)
            events.mark_job_dirty(session, other)


def note_blocked_at_submission(session: Session, job: JobRow) -> None:
    """A job submitted to depend on a job that already failed or was canceled says so at once."""
    if not job.depends_on:
        return
    for dep in session.scalars(select(JobRow).where(JobRow.id.in_(job.depends_on))):
        if JobStatus(dep.status) in BLOCKING:
            job.activity = _blocked_message(dep)
            _log(session, job, "server", job.activity)


def release(session: Session, job: JobRow, job_ids: list[int] | None, actor: str, reason: str = "") -> list[int]:
    """Drop dependencies of `job` (None: those that failed, were canceled or are gone); returns those dropped."""
    if JobStatus(job.status) in FINISHED_JOB_STATUSES:
        raise Invalid(f"job {job.id} is {job.status}: there is nothing to release", field="id")
    current = list(job.depends_on or [])
    if job_ids is None:
        deps = dependencies(session, job)
        drop = [d.job_id for d in deps if d.blocking or d.status is None]
    else:
        if missing := sorted(set(job_ids) - set(current)):
            raise Invalid(f"job {job.id} does not depend on job {missing[0]}", field="job_ids")
        drop = list(dict.fromkeys(job_ids))
    if not drop:
        return []
    job.depends_on = [d for d in current if d not in drop]
    job.updated = utcnow()
    why = f" ({reason})" if reason else ""
    listed = ", ".join(str(d) for d in drop)
    _log(session, job, actor, f"released from its dependency on job {listed} by {actor}{why}")
    job.activity = f"released from job {listed} by {actor}"
    events.mark_job_dirty(session, job)
    return drop

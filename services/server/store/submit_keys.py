"""Idempotent job submission: a client that sends a job with an `Idempotency-Key` header may send it again after
losing the answer (a timeout, a Server going down mid-request, a load balancer's 502) and is given the job the
first request made, not a second job rendering the same frames.

A key is its submitter's (another user's same key is another job), stands for one submission (the same key with
another body is refused, naming the header) and lasts as long as its job: a job deleted, or refused and so never
stored, frees its key; a job a wrangler canceled while it was being stored keeps it after its removal
(`canceled_submit_keys`, for `CANCELED_KEYS_KEPT`: longer than any client keeps repeating), so a client still
repeating it is told of the cancel rather than building it again.
The unique index on (submitter, key) makes two Servers taking the same repeat at once store one job; the loser
answers with the winner's.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.jobs import IDEMPOTENCY_KEY, JobSubmission
from services.protocol.states import JobStatus
from services.server.db.tables import CanceledSubmitKeyRow, JobRow
from services.server.store import orphans
from services.server.store.errors import Conflict, Invalid
from services.server.store.jobs import Actor

HEADER = IDEMPOTENCY_KEY
STILL_STORING_RETRY = 1.0  # seconds a client waits before asking again for a job still being stored
# a client repeats a submission for minutes (`tablao submit` 5, the app 10), the Blender add-on while Blender runs
CANCELED_KEYS_KEPT = timedelta(days=7)


class KeyTaken(Exception):
    """Storing the job met another submission's row with the same key (committed meanwhile)."""


class StillStoring(Conflict):
    """The first submission with this key is still storing its tasks: ask again after `retry_after` seconds."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"job {job_id}, submitted with this {HEADER}, is still being stored; ask again in a moment",
            field=HEADER,
        )
        self.job_id = job_id
        self.retry_after = STILL_STORING_RETRY


def digest(sub: JobSubmission) -> str:
    """What "the same submission" means: the parsed body, keys sorted (a client's key order is not a change)."""
    text = json.dumps(sub.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _keyed(actor: Actor, key: str) -> ColumnElement[bool]:
    return and_(JobRow.submitter == actor.name, JobRow.submit_key == key)  # ux_jobs_submit_key


def taken(session: Session, actor: Actor, key: str) -> bool:
    """Whether the key names a job, or one canceled while it was being stored."""
    if session.get(CanceledSubmitKeyRow, (actor.name, key)) is not None:
        return True
    return session.scalar(select(JobRow.id).where(_keyed(actor, key))) is not None


def earlier(session: Session, actor: Actor, key: str, body_digest: str) -> JobRow | None:
    """The job an earlier submission with this key made, None if there is none; refuses a different body, and
    a job whose tasks are still being stored (the client asks again)."""
    job = session.scalar(select(JobRow).where(_keyed(actor, key)))
    if job is None:
        if (canceled := session.get(CanceledSubmitKeyRow, (actor.name, key))) is not None:
            raise _canceled_while_stored(canceled.job_id)
        return None
    if job.submit_digest != body_digest:
        raise Invalid(
            f"{HEADER} {key!r} was already used for another submission (job {job.id}); a new job needs a new key",
            field=HEADER,
        )
    if job.activity == orphans.CANCELED_UNBUILT:  # a wrangler's cancel: the repeat must not build it again
        raise _canceled_while_stored(job.id)
    if job.status == JobStatus.UNDER_CONSTRUCTION.value:
        raise StillStoring(job.id)  # being stored, or its Server died: the repeat may take it over (orphans.py)
    return job


def _canceled_while_stored(job_id: int) -> Conflict:
    return Conflict(f"job {job_id}, submitted with this key, was canceled while its tasks were being stored; "
                    "a new submission needs a new key", field="status")  # fmt: skip


def is_key_clash(exc: IntegrityError) -> bool:
    """Whether storing a job failed on the key's unique index (not on a reference gone meanwhile)."""
    return "submit_key" in str(exc.orig)


def prune_canceled(session: Session, kept: timedelta = CANCELED_KEYS_KEPT) -> int:
    """A housekeeping sweep: forget the keys of jobs canceled while being stored longer ago than `kept` (a
    repeat after that is a new submission, as after the job's deletion)."""
    result = session.execute(delete(CanceledSubmitKeyRow).where(CanceledSubmitKeyRow.canceled < utcnow() - kept))
    return int(getattr(result, "rowcount", 0) or 0)

"""Routes for a job's failures: its blocklist (shown, cleared per entry) and its dependencies (released).

Who may: anyone reads; clearing and releasing follow the other job actions (store.jobs.check_may_manage):
wranglers and admins for every job, artists for their own.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.protocol.common import Id
from services.protocol.failures import (
    BlocklistClearRequest,
    BlocklistClearResult,
    BlocklistEntry,
    Dependency,
    ReleaseRequest,
)
from services.protocol.jobs import Job
from services.server.api.deps import ConfigDep, DispatcherDep, ReadSessionDep, SessionDep, UserDep
from services.server.store import failures
from services.server.store import jobs as job_store
from services.server.store.convert import job_to_wire
from services.server.store.link import handing_off

router = APIRouter(prefix="/jobs", tags=["job failures"])


@router.get("/{job_id}/blocklist")
def blocklist(job_id: Id, session: ReadSessionDep, _: UserDep) -> list[BlocklistEntry]:
    """Which workers failed which task types of the job, and whether they may still run them."""
    job_store.get(session, job_id)
    return failures.entries(session, job_id)


@router.post("/{job_id}/blocklist/clear")
def clear_blocklist(job_id: Id, req: BlocklistClearRequest, session: SessionDep, user: UserDep) -> BlocklistClearResult:
    job = job_store.get(session, job_id, for_update=True)
    job_store.check_may_manage(job, user)
    cleared = failures.clear(session, job, req.entries, user.name)
    session.commit()
    return BlocklistClearResult(cleared=cleared)


@router.get("/{job_id}/dependencies")
def dependencies(job_id: Id, session: ReadSessionDep, _: UserDep) -> list[Dependency]:
    """The jobs this one waits for, with their status; `blocking`: failed or canceled, it would wait for ever."""
    return failures.dependencies(session, job_store.get(session, job_id))


@router.post("/{job_id}/release")
def release(
    job_id: Id, req: ReleaseRequest, session: SessionDep, user: UserDep, dispatcher: DispatcherDep, cfg: ConfigDep
) -> Job:
    """Drop dependencies of the job, by default those that failed, were canceled or are gone; it may run now."""
    job = job_store.get(session, job_id, for_update=True)
    job_store.check_may_manage(job, user)
    cfg.policy.check_run_again(job.type, job.settings, user.role)  # it may run now: as a resume is judged
    failures.release(session, job, req.job_ids, user.name, req.reason)
    with handing_off(session, dispatcher, [job], cfg.lease_seconds):  # to Managers waiting for work
        session.commit()
    return job_to_wire(job)

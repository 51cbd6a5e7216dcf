"""Routes for jobs: submit, list, detail, status and priority changes (one or many), delete, tasks, log."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import State

from services.protocol.common import Id, Int, Page
from services.protocol.jobs import (
    IDEMPOTENCY_KEY_PATTERN,
    BulkItemResult,
    BulkJobRequest,
    BulkResult,
    Job,
    JobAction,
    JobActionRequest,
    JobDetail,
    JobLogEntry,
    JobSubmission,
    PriorityRequest,
    TaskSummary,
)
from services.protocol.states import JobStatus, TaskStatus
from services.server.api.deps import ConfigDep, DispatcherDep, ReadSessionDep, SessionDep, UserDep
from services.server.config import ServerConfig
from services.server.db.tables import JobRow
from services.server.jobtypes.registry import get_job_type
from services.server.store import jobs as store
from services.server.store import log_copies, orphans, path_variables, submission, submit_keys, task_times
from services.server.store.convert import job_to_wire, log_entry, task_summary
from services.server.store.errors import Conflict, Invalid, StoreError
from services.server.store.jobs import Actor
from services.server.store.link import handing_off
from services.server.store.submission import Limits, SubmitKey

router = APIRouter(prefix="/jobs", tags=["jobs"])

# a cursor after a job sorted by name holds the name, JSON-escaped (up to 6 characters for each of its 100) and
# in base64: longer than 200 characters for a long name in a non-Latin script
CURSOR_MAX = 2000


@router.post(
    "",
    status_code=201,
    response_model=Job,
    responses={200: {"model": Job, "description": "a repeat of a submission's Idempotency-Key: the job it made"}},
)
def submit_job(
    sub: JobSubmission,
    request: Request,
    user: UserDep,
    dispatcher: DispatcherDep,
    cfg: ConfigDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=submit_keys.HEADER,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="1 – 128 printable ASCII characters: sent again with the same body, the job the first "
            "request made comes back (200) instead of a second job",
        ),
    ] = None,
) -> Response:
    """Compiled outside any lock and stored in short transactions (see store/submission.py)."""
    state = request.app.state
    if len(request.headers.getlist(submit_keys.HEADER)) > 1:  # which one would the repeat send?
        raise Invalid(f"give one {submit_keys.HEADER}, not several", field=submit_keys.HEADER)
    key = None if idempotency_key is None else SubmitKey(idempotency_key, submit_keys.digest(sub))
    # a repeat gets the job it made first, also when today's policy would refuse it (it is the user's own job)
    if key is not None and (made := _made_or_taken_over(state, cfg, user, key)) is not None:
        return _job_answer(made, 200)
    if (job_type := get_job_type(sub.type)) is not None:  # an unknown type gets its 422 from the store
        cfg.policy.check_submission(sub.type, job_type, sub.settings, user.role)
        with state.read_sessions() as session:
            path_variables.check(session, job_type, sub.settings, cfg.variables, sub.manager_id)
    if "priority" in sub.model_fields_set:
        cfg.policy.check_priority(sub.priority, user.role)
    else:  # the default (50) past the role's cap: the cap, so a form or command that gives none still submits
        sub.priority = cfg.policy.highest_priority(sub.priority, user.role)
    limits = Limits(cfg.max_tasks_per_job, cfg.max_active_jobs_per_user, cfg.max_unfinished_tasks_per_user)

    def finish(session: Session, job: JobRow) -> AbstractContextManager[object]:
        return handing_off(session, dispatcher, [job], cfg.lease_seconds)  # to Managers waiting for work

    if key is None:
        return _job_answer(submission.submit(state.read_sessions, state.write_sessions, sub, user, limits, finish,
                                             state.builds), 201)  # fmt: skip
    try:
        job = submission.submit(state.read_sessions, state.write_sessions, sub, user, limits, finish, state.builds, key)
    except (submit_keys.KeyTaken, StoreError) as exc:
        # A repeat at the same moment stored the job first: its answer is that job, whatever this one met on the
        # way (on PostgreSQL the quota may count the other's job before this one's key read saw it).
        if (made := _made_with(state.read_sessions, user, key)) is not None:
            return _job_answer(made, 200)
        if isinstance(exc, StoreError):
            raise
        header = submit_keys.HEADER
        gone = Conflict("the other submission with this key was refused meanwhile; ask again", field=header)
        gone.retry_after = submit_keys.STILL_STORING_RETRY
        raise gone from None
    return _job_answer(job, 201)


def _made_or_taken_over(state: State, cfg: ServerConfig, user: Actor, key: SubmitKey) -> JobRow | None:
    """The job an earlier request with this key made; None if there is none, or if its Server died while storing
    it (that job is removed here, so this request stores the submission anew, store/orphans.py take_over)."""
    try:
        return _made_with(state.read_sessions, user, key)
    except submit_keys.StillStoring as still:
        bound = orphans.builder_silent_bound(cfg.orphan_seconds)
        if not submission.take_over(state.write_sessions, still.job_id, user, key.key, bound, state.builds,
                                    state.sole_since):  # fmt: skip
            raise  # its writer is alive (or another repeat took it over): ask again in a moment
        return None


def _made_with(read_sessions: sessionmaker[Session], user: Actor, key: SubmitKey) -> JobRow | None:
    with read_sessions() as session:
        return submit_keys.earlier(session, user, key.key, key.digest)


def _job_answer(job: JobRow, status: int) -> Response:
    # our model, valid already: no second validation (for a sync route, another trip to the thread pool)
    headers = {"Idempotent-Replayed": "true"} if status == 200 else None
    return Response(job_to_wire(job).model_dump_json(), status, headers=headers, media_type="application/json")


@router.get("")
def list_jobs(
    session: ReadSessionDep,
    _: UserDep,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    submitter: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[str, Query(max_length=20)] = "-created",
    limit: Annotated[Int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX)] = None,
) -> Page[Job]:
    rows, next_cursor = store.list_jobs(
        session,
        status=status,
        submitter=submitter,
        type_=type,
        search=search,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    workers = task_times.worker_counts(session)  # for the ETAs: one query, whatever the number of jobs
    return Page[Job](items=[job_to_wire(j, workers(j)) for j in rows], next_cursor=next_cursor)


# actions that make a job's tasks runnable again: judged by today's policy, as a submission is
RUN_AGAIN = frozenset({JobAction.RESUME, JobAction.REQUEUE, JobAction.REQUEUE_FAILED})


def _act(session: Session, job: JobRow, action: JobAction, user: Actor, reason: str, cfg: ServerConfig) -> None:
    """A wrangler's action on one job; one that runs its tasks again is judged by today's policy first."""
    if action in RUN_AGAIN:
        store.check_may_manage(job, user)  # someone else's job: that is the refusal to name
        cfg.policy.check_run_again(job.type, job.settings, user.role)
    store.apply_action(session, job, action, user, reason)


@router.post("/bulk")
def bulk(
    req: BulkJobRequest, session: SessionDep, user: UserDep, dispatcher: DispatcherDep, cfg: ConfigDep
) -> BulkResult:
    chosen = [req.action is not None, req.priority is not None, req.delete]
    if sum(chosen) != 1:
        raise Invalid("give exactly one of action, priority or delete", field="action")
    results: dict[int, BulkItemResult] = {}
    acted_on = []
    deleted: list[int] = []
    waiting: dict[int, list[int]] | None = None
    # locked in id order, as every bulk request locks them: two in opposite orders deadlocked on PostgreSQL
    for job_id in sorted(set(req.ids)):
        savepoint = session.begin_nested()
        try:
            job = store.get(session, job_id, for_update=True)
            if req.action is not None:
                _act(session, job, req.action, user, req.reason, cfg)
            elif req.priority is not None:
                store.check_may_manage(job, user)  # someone else's job: that is the refusal to name
                cfg.policy.check_priority(req.priority, user.role, job.priority)
                store.set_priority(session, job, req.priority, user)
            else:
                if waiting is None:
                    waiting = store.waiting_on(session)  # once: a bulk delete may name thousands of jobs
                _release_or_hold(session, job, user, cfg, waiting)
                store.delete_job(session, job, user)
            savepoint.commit()
            results[job_id] = BulkItemResult(id=job_id, ok=True)
            if req.action is not None:
                acted_on.append(job)
            elif req.delete:
                deleted.append(job_id)
        except (StoreError, ValueError) as exc:
            savepoint.rollback()
            results[job_id] = BulkItemResult(id=job_id, ok=False, error=str(getattr(exc, "message", exc)))
    # resumed or requeued jobs go to waiting claims in this transaction, after every savepoint has ended
    with handing_off(session, dispatcher, acted_on, cfg.lease_seconds):
        session.commit()
    for job_id in deleted:
        log_copies.forget_job(cfg.data_dir, job_id)
    return BulkResult(results=[results[job_id] for job_id in dict.fromkeys(req.ids)])


@router.api_route("/bulk", methods=["GET", "DELETE"], include_in_schema=False)
def bulk_is_only_posted() -> None:
    """`/jobs/bulk` is no job: a GET or DELETE of it is a 405 naming `POST`, not a 422 for the id `bulk`."""
    raise HTTPException(405)


@router.get("/{job_id}")
def get_job(
    job_id: Id, session: ReadSessionDep, _: UserDep, tasks_limit: Annotated[Int, Query(ge=0, le=1000)] = 100
) -> JobDetail:
    job = store.get(session, job_id)
    tasks, next_cursor = store.list_tasks(session, job_id, limit=tasks_limit) if tasks_limit else ([], None)
    return JobDetail(
        **job_to_wire(job, task_times.worker_counts(session)(job)).model_dump(),
        tasks=[task_summary(t) for t in tasks],
        tasks_next_cursor=next_cursor,
        log=[log_entry(r) for r in store.job_log(session, job_id, limit=200)],
    )


@router.delete("/{job_id}", status_code=204)
def delete_job(job_id: Id, session: SessionDep, user: UserDep, cfg: ConfigDep) -> Response:
    job = store.get(session, job_id, for_update=True)
    _release_or_hold(session, job, user, cfg, store.waiting_on(session))
    store.delete_job(session, job, user)
    session.commit()
    log_copies.forget_job(cfg.data_dir, job_id)
    return Response(status_code=204)


def _release_or_hold(
    session: Session, job: JobRow, user: Actor, cfg: ServerConfig, waiting: dict[int, list[int]]
) -> None:
    """A deleted dependency counts as done, so deleting a job that did not complete lets the jobs waiting for it
    run. Those the caller may not release (another artist's; one today's policy would not let the caller run,
    or a demoted user could start a command job by deleting the job it waits for) are paused instead, for their
    owner or a wrangler to resume (they run without it) or cancel: refusing the delete let any artist keep another
    from ever deleting her own job by making a job wait for it. `waiting`: store.waiting_on."""
    store.check_may_manage(job, user)  # the job's own refusals come first
    if job.status not in (JobStatus.CANCELED.value, JobStatus.FAILED.value):
        return  # completed: its dependents were free already; unfinished: not deleted (store.delete_job)
    for waiting_id in waiting.get(job.id, []):
        other = session.get(JobRow, waiting_id, with_for_update=True)
        if other is None:
            continue
        try:
            store.check_may_manage(other, user)
            cfg.policy.check_run_again(other.type, other.settings, user.role)
        except StoreError as exc:
            store.hold_waiting(session, other, job.id, user, exc.message)


@router.post("/{job_id}/status")
def change_status(
    job_id: Id, req: JobActionRequest, session: SessionDep, user: UserDep, dispatcher: DispatcherDep, cfg: ConfigDep
) -> Job:
    job = store.get(session, job_id, for_update=True)
    _act(session, job, req.action, user, req.reason, cfg)
    with handing_off(session, dispatcher, [job], cfg.lease_seconds):  # a resumed or requeued job's tasks
        session.commit()
    return job_to_wire(job)


@router.post("/{job_id}/priority")
def change_priority(job_id: Id, req: PriorityRequest, session: SessionDep, user: UserDep, cfg: ConfigDep) -> Job:
    job = store.get(session, job_id, for_update=True)
    store.check_may_manage(job, user)
    cfg.policy.check_priority(req.priority, user.role, job.priority)
    store.set_priority(session, job, req.priority, user)
    session.commit()
    return job_to_wire(job)


@router.get("/{job_id}/tasks")
def list_tasks(
    job_id: Id,
    session: ReadSessionDep,
    _: UserDep,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    limit: Annotated[Int, Query(ge=1, le=5000)] = 100,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX)] = None,
) -> Page[TaskSummary]:
    rows, next_cursor = store.list_tasks(session, job_id, status=status, limit=limit, cursor=cursor)
    return Page[TaskSummary](items=[task_summary(t) for t in rows], next_cursor=next_cursor)


@router.get("/{job_id}/log")
def get_log(
    job_id: Id, session: ReadSessionDep, _: UserDep, limit: Annotated[Int, Query(ge=1, le=100_000)] = 1000
) -> list[JobLogEntry]:
    store.get(session, job_id)
    return [log_entry(r) for r in store.job_log(session, job_id, limit=limit)]

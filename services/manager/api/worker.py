"""The Worker API: registration, sign-on/off, asking for tasks, task updates (previews among them), heartbeats."""
# Every route and dependency touching the core is `async def`: they all run on the event loop thread, so the
# core and its one SQLite connection are never used from two threads (sync routes would run in a pool).

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.manager import prefetch, task_updates
from services.manager.api.deps import CoreDep, SigningOnWorkerDep, WorkerDep, authenticated_worker, calling_instance
from services.manager.core import ManagerCore
from services.manager.errors import Invalid, NotSignedOn, TooManyAttempts, Unauthorized
from services.manager.model import HeldTask, WorkerState
from services.manager.run_watch import MAX_WAIT
from services.protocol import api_contract
from services.protocol.backoff import Backoff
from services.protocol.common import Id
from services.protocol.input_guard import is_json
from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import (
    STATUS_LAZY_HEADER,
    STATUS_REQUESTED_HEADER,
    AssignedTask,
    Heartbeat,
    MayIRun,
    RegisterRequest,
    RegisterResponse,
    SignOnRequest,
    TaskRequest,
    UpdatesAck,
    WorkerTaskUpdates,
)

router = APIRouter(prefix="/api/v1/worker", tags=["worker"])


def _json(model: object, status_code: int = 200) -> Response:
    # skip FastAPI's response validation on the hot path: the models are ours and already valid
    return Response(model.model_dump_json(), status_code, media_type="application/json")  # type: ignore[attr-defined]


@router.post("/register", response_model=RegisterResponse, status_code=200)
async def register(body: RegisterRequest, request: Request, core: CoreDep) -> Response:
    backoff: Backoff = request.app.state.registration_backoff
    address = request.client.host if request.client else "unknown"
    if wait := backoff.retry_after(address):
        raise TooManyAttempts(
            f"too many wrong registration secrets from this address: try again in {wait:.0f} s",
            wait,
            "registration_secret",
        )
    try:
        worker_id, secret = core.workers.register(
            body.registration_secret, request.app.state.registration_secret, body.name, body.platform
        )
    except Unauthorized:
        if wait := backoff.failed(address):
            raise TooManyAttempts(
                f"wrong registration_secret; try again in {wait:.0f} s", wait, "registration_secret"
            ) from None
        raise
    return _json(RegisterResponse(worker_id=worker_id, secret=secret))


@router.post("/sign-on")
async def sign_on(body: SignOnRequest, request: Request, worker: SigningOnWorkerDep, core: CoreDep) -> Response:
    instance = calling_instance(request)
    was_signed_on = worker.signed_on
    answer = core.sign_on(worker, body)
    if instance is not None:
        peer = request.client.host if request.client else "unknown"
        core.workers.take_instance(worker, instance, peer, was_signed_on=was_signed_on)
    # a task request an earlier process of this worker still waits on ends now: it must not be handed a task
    core.supersede(worker)
    return _json(answer)


@router.post("/sign-off", status_code=204)
async def sign_off(worker: WorkerDep, core: CoreDep) -> Response:
    core.sign_off(worker)
    return Response(status_code=204)


@router.post("/heartbeat")
async def heartbeat(body: Heartbeat, worker: WorkerDep, core: CoreDep) -> Response:
    if body.status == WorkerStatus.OFFLINE:
        # a heartbeat is the worker saying it is there: the farm listed one running a task as offline
        raise Invalid("a heartbeat cannot say offline: a worker leaving signs off (/api/v1/worker/sign-off)", "status")
    return _json(core.heartbeat(worker, body))


# The hot route: every finished task comes back through it. It reads its own body and checks the worker
# itself, which saves FastAPI's dependency and body machinery (half of the route's time here); the request
# body is still documented and validated as a TaskRequest.
_TASK_REQUEST_SCHEMA = TaskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
_TASK_REQUEST_SCHEMA.pop("$defs", None)


@router.post(
    "/task",
    responses={
        200: {"model": AssignedTask},
        204: {
            "description": "no task for now; a wait ends early when a wrangler asks something of the worker",
            "headers": {
                "Retry-After": {"description": "seconds before asking again", "schema": {"type": "integer"}},
                STATUS_REQUESTED_HEADER: {
                    "description": "a state change asked of this worker, as a heartbeat answer gives it",
                    "schema": {"type": "string", "enum": [s.value for s in WorkerStatusRequest]},
                },
                STATUS_LAZY_HEADER: {
                    "description": "1: after the running task; 0: now",
                    "schema": {"type": "string", "enum": ["0", "1"]},
                },
            },
        },
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _TASK_REQUEST_SCHEMA}}}
    },
)
async def ask_for_task(request: Request) -> Response:
    """Report a finished task (optional) and get the next one; waits up to `wait_seconds` for one."""
    worker = await authenticated_worker(request)
    instance = calling_instance(request)
    core: ManagerCore = request.app.state.core
    if not is_json(request.scope):
        # as FastAPI's routes refuse it; the input guard looks for NULs and NaN only in bodies sent as JSON
        raise Invalid(api_contract.SEND_AS_JSON, "body")
    try:
        body = TaskRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    if not worker.signed_on:
        raise NotSignedOn("this worker has not signed on: call /api/v1/worker/sign-on first", "worker")
    if body.finished is None and body.finished_task_id is not None:
        # its report would be ignored and the task it names soft-failed as "asked for a new one without finishing"
        raise Invalid("finished is required with finished_task_id (the task's final updates)", "finished")
    if body.finished is not None:
        if body.finished_task_id is None:
            raise Invalid("finished_task_id is required with finished", "finished_task_id")
        task_updates.validate(body.finished.updates, "finished.updates")
        task_updates.apply(core, worker, body.finished_task_id, body.finished.updates)
    core.supersede(worker)
    running = body.running_task_id
    if running is not None:  # a prefetch: the next task, while the worker runs this one (prefetch.py)
        task = prefetch.next_for(core, worker, running)
        if task is None and body.wait_seconds > 0 and prefetch.may_prefetch(worker, running):
            task = await core.wait_for_task(worker, body.wait_seconds, running)
    else:
        task = core.hand_out(worker)
        if task is None and body.wait_seconds > 0 and worker.available:
            task = await core.wait_for_task(worker, body.wait_seconds)
    if task is not None and instance is not None and instance != worker.instance:
        # another process signed on as this worker while this request waited, after the task was set aside for
        # it: the task goes back before this process, which is told to stop, could start it
        with core.writing():
            if running is not None and worker.next_task_id == task.claim.id:
                core.give_back_next(worker)
            elif worker.current_task_id == task.claim.id:
                core.take_back(worker, "another process signed on as this worker")
        core.workers.still_current(worker, instance)
    if task is None:
        headers = {"Retry-After": str(max(1, round(core.config.retry_after)))}
        if worker.status_requested is not None:
            headers[STATUS_REQUESTED_HEADER] = worker.status_requested.value
            headers[STATUS_LAZY_HEADER] = "1" if worker.lazy else "0"
        return Response(status_code=204, headers=headers)
    return _json(_assigned(core, task, worker))


def _assigned(core: ManagerCore, task: HeldTask, worker: WorkerState) -> AssignedTask:
    c = task.claim
    return AssignedTask(
        id=c.id, job_id=c.job_id, job_name=c.job_name, name=c.name, type=c.type, handout=task.handout,
        commands=c.commands, steps_total=c.steps_total,
        variables=core.config.resolved_variables(worker.platform),
        path_mappings=core.config.path_mappings(worker.platform),
    )  # fmt: skip


@router.post("/tasks/{task_id}/updates")
async def task_updates_route(task_id: Id, body: WorkerTaskUpdates, worker: WorkerDep, core: CoreDep) -> Response:
    last = task_updates.apply(core, worker, task_id, body.updates)
    return _json(UpdatesAck(last_seq=last))


@router.get("/tasks/{task_id}/may-i-run")
async def may_i_run(
    request: Request,
    task_id: Id,
    worker: WorkerDep,
    core: CoreDep,
    handout: Id | None = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, allow_inf_nan=False)] = 0,
    heard: WorkerStatusRequest | None = None,
) -> Response:
    """May the worker keep running this task? With `wait`, the answer waits (long poll, run_watch.py) until it
    says something new: stop, or a status request other than `heard`, the one the worker already knows."""
    deadline = time.monotonic() + wait
    instance = calling_instance(request)
    while True:
        core.workers.still_current(worker, instance)  # another process signed on as this worker meanwhile
        answer = _may_i_run(core, worker, task_id, handout)
        remaining = deadline - time.monotonic()
        if not answer.may_keep_running or answer.status_requested != heard or remaining <= 0:
            return _json(answer)
        await core.workers.run_watch.wait(worker.id, remaining)


def _may_i_run(core: ManagerCore, worker: WorkerState, task_id: int, handout: int | None) -> MayIRun:
    task = core.tasks.get(task_id)
    req = worker.status_requested
    if task is None or task.worker_id != worker.id:
        core.taken_back.told(task_id, worker.id)  # it stops the run now: a resume must not hand it back to it
        return MayIRun(may_keep_running=False, reason="the task is no longer assigned to this worker")
    if handout is not None and handout != task.handout:
        return MayIRun(may_keep_running=False, reason=f"hand-out {handout} is stale")
    if req is not None and req.value in ("asleep", "shutdown", "restart") and not worker.lazy:
        return MayIRun(may_keep_running=False, reason=f"asked to {req.value} now", status_requested=req, lazy=False)
    return MayIRun(may_keep_running=True, status_requested=req, lazy=worker.lazy)

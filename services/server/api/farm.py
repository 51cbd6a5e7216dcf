"""Routes for the farm: health, status counts, job types, workers and Managers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.protocol import VERSION
from services.protocol.common import NEXT_CURSOR_HEADER, Int
from services.protocol.farm import (
    FarmStatus,
    FarmVariables,
    Health,
    Manager,
    ManagerCreate,
    ManagerCreated,
    Me,
    Worker,
    WorkerStatusRequestBody,
)
from services.protocol.jobs import JobTypeInfo
from services.protocol.states import ManagerStatus
from services.server.api.deps import AdminDep, ConfigDep, ReadSessionDep, SessionDep, UserDep, WranglerDep
from services.server.api.jobs import CURSOR_MAX
from services.server.api.workers import WorkerId
from services.server.jobtypes.registry import get_job_type, job_types
from services.server.policy import FarmPolicy
from services.server.store import farm as store
from services.server.store import worker_admin
from services.server.store.convert import manager_to_wire, worker_to_wire
from services.server.store.errors import NotFound
from services.server.store.jobs import Actor

router = APIRouter(tags=["farm"])

WORKERS_PAGE_MAX = 1000  # the default too: one page holds a normal farm's workers, as before paging


@router.get("/health")
async def health() -> Health:
    # on the event loop, not in the thread pool: clients with several Servers ask it with a 3 s bound before a
    # first request (server_transport.py), and a busy Server's full pool would have them pass it over
    return Health(status="ok", version=VERSION)


@router.get("/me")
def who_am_i(user: UserDep, cfg: ConfigDep) -> Me:
    return Me(name=user.name, role=user.role, priority_cap=cfg.policy.priority_caps.get(user.role))


@router.get("/farm/variables")
def farm_variables(_: UserDep, cfg: ConfigDep) -> FarmVariables:
    return FarmVariables(variables=cfg.variables)


@router.get("/farm/status")
def farm_status(session: ReadSessionDep, _: UserDep, cfg: ConfigDep) -> FarmStatus:
    return store.farm_status(session, cfg.lease_seconds)


def _job_type_info(name: str, user: Actor, policy: FarmPolicy) -> JobTypeInfo:
    """The type as `user` sees it: with whether the farm's policy lets them submit it (a client offers only
    those), and the roles that may (a client says whom a refused one is for)."""
    jt = get_job_type(name)
    if jt is None:
        raise NotFound(f"no job type named {name!r} (known: {', '.join(job_types())})", field="name")
    roles = policy.roles_for(name, jt)
    return JobTypeInfo(
        name=name,
        label=jt.label,
        description=jt.description,
        settings_schema=jt.settings_schema(),
        may_submit=user.role in roles,
        submit_roles=sorted(roles),
    )


@router.get("/job-types")
def list_job_types(user: UserDep, cfg: ConfigDep) -> list[JobTypeInfo]:
    return [_job_type_info(name, user, cfg.policy) for name in job_types()]


@router.get("/job-types/{name}")
def get_job_type_info(name: str, user: UserDep, cfg: ConfigDep) -> JobTypeInfo:
    return _job_type_info(name, user, cfg.policy)


@router.get("/workers")
def list_workers(
    session: ReadSessionDep,
    _: UserDep,
    response: Response,
    limit: Annotated[Int, Query(ge=1, le=WORKERS_PAGE_MAX)] = WORKERS_PAGE_MAX,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX)] = None,
) -> list[Worker]:
    """A page of the workers by name; `X-Next-Cursor` (absent on the last page) is the `cursor` for the next. The
    answer stays a list, as older clients read it, who get the first page: a normal farm's every worker."""
    rows, next_cursor = store.list_workers(session, limit=limit, cursor=cursor)
    if next_cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = next_cursor
    return [worker_to_wire(w) for w in rows]


@router.post("/workers/{worker_id}/status-request")
def request_worker_status(
    worker_id: WorkerId, req: WorkerStatusRequestBody, session: SessionDep, _: WranglerDep
) -> Worker:
    """Ask a worker to sleep, wake, restart or shut down (lazy: after its task; else at once, requeueing it)."""
    worker = worker_admin.request_status(session, worker_id, req.status, req.lazy)
    session.commit()
    return worker_to_wire(worker)


@router.get("/managers")
def list_managers(session: ReadSessionDep, _: UserDep, cfg: ConfigDep) -> list[Manager]:
    return store.list_managers(session, cfg.lease_seconds)


@router.post("/managers", status_code=201)
def create_manager(req: ManagerCreate, session: SessionDep, _: AdminDep) -> ManagerCreated:
    row, token = store.create_manager(session, req.name)
    session.commit()
    return ManagerCreated(**manager_to_wire(row, ManagerStatus.NEVER_SEEN, 0, 0).model_dump(), token=token)

"""Wire models of workers, managers, users, tokens, the farm status and the event stream."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from services.protocol.common import JSON_TEXT, Int, ReportedTime, ResponseModel, WireModel
from services.protocol.file_paths import control_character
from services.protocol.host_requirements import HostCapabilities
from services.protocol.states import ManagerStatus, Role, Unavailability, WorkerStatus, WorkerStatusRequest

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
# a worker's name goes into logs, the app and the Server's lists: the rule of `tablao worker --name`, so a name
# cannot carry a line break ("w\nINFO ...") or a right-to-left override; the Server holds a Manager's reports to it
WorkerName = Annotated[str, Field(pattern=NAME_PATTERN)]

_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9._@-]+")


def reported_name(name: str) -> str:
    """A worker's name as a Manager reports it, made one the rule allows: itself when it is one, else each run of
    other characters a dash (`Render Node 1`: `Render-Node-1`, a line break or a right-to-left override: a dash).
    A Manager may hold a name from before its worker routes kept to the rule; refusing it stopped that Manager."""
    if _NAME.fullmatch(name):
        return name
    return _NOT_IN_A_NAME.sub("-", name).lstrip("._@-")[:64] or "worker"


# on the link: never refused (the Manager builds these models itself; an error there ended its link loop)
ReportedName = Annotated[str, StringConstraints(max_length=64), AfterValidator(reported_name)]
MAX_MEMORY_MB = 2**40  # an exbibyte: far past any machine, well inside a float
MAX_LOAD = 1e6  # run-queue length; a machine that loaded would not be sending heartbeats


class Utilisation(WireModel):
    """One sample of a worker machine's load.

    Every number is finite and bounded: the Server keeps samples in a JSON column, where PostgreSQL refuses
    Infinity (a Manager's whole batch with it) and SQLite stores it to read back as null. Its time is made UTC,
    and one out of datetime's range in UTC is a 422 (the farm's lists showed it as sent)."""

    time: ReportedTime
    cpu_percent: float = Field(ge=0, le=100, allow_inf_nan=False)
    memory_percent: float = Field(ge=0, le=100, allow_inf_nan=False)
    memory_used_mb: float = Field(ge=0, le=MAX_MEMORY_MB, allow_inf_nan=False)
    load_1m: float = Field(default=0.0, ge=0, le=MAX_LOAD, allow_inf_nan=False)
    gpu_percent: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)


class Worker(ResponseModel):
    id: str
    name: str
    manager_id: int
    platform: str
    task_types: list[str]
    tags: list[str]
    software: dict[str, str]
    status: WorkerStatus
    status_requested: WorkerStatusRequest | None
    current_task_id: int | None
    last_seen: datetime | None
    utilisation: Utilisation | None
    unavailable: Unavailability | None = None  # why it claims no work although awake
    capabilities: HostCapabilities | None = None  # what it offers for OpenJD host requirements
    next_task_id: int | None = None  # prefetched: the task it runs right after the current one


class SleepSchedule(WireModel):
    """A worker's sleep schedule, evaluated by its Manager in the Manager's local time (as Flamenco's).

    On the given days (0 = Monday) the worker sleeps from `start` to `end` ("HH:MM"); an end at or before the
    start runs past midnight into the next day. Inactive, it is kept but not applied.
    """

    active: bool = False
    # bounds in the document; the check below says what the days are
    days: list[Annotated[Int, Field(json_schema_extra={"minimum": 0, "maximum": 6})]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], max_length=7
    )
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="18:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if any(not 0 <= d <= 6 for d in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))

    def asleep_at(self, local: datetime) -> bool:
        """True when the schedule is active and `local` (the Manager's wall clock) is inside a sleep window."""
        if not self.active:
            return False
        start = int(self.start[:2]) * 60 + int(self.start[3:])
        end = int(self.end[:2]) * 60 + int(self.end[3:])
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if end > start:
            return today in self.days and start <= minute < end
        return (today in self.days and minute >= start) or (yesterday in self.days and minute < end)


class WorkerStatusRequestBody(WireModel):
    status: Annotated[WorkerStatusRequest, JSON_TEXT]
    # lazy: after the current task; otherwise at once (a running task is requeued)
    lazy: bool = True


class Manager(ResponseModel):
    id: int
    name: str
    status: ManagerStatus
    last_seen: datetime | None
    created: datetime
    workers_total: int = 0
    workers_awake: int = 0
    client_url: str | None = None  # where users read full task logs from it (it reports this itself)
    variables: list[str] | None = None  # the names of its path variables, as it reports them (None: not yet)


class ManagerCreate(WireModel):
    name: str = Field(pattern=NAME_PATTERN)


class ManagerCreated(Manager):
    token: str


class User(ResponseModel):
    id: int
    name: str
    role: Role
    created: datetime
    disabled: bool = False  # a disabled user can neither log in nor use its tokens


class UserCreate(WireModel):
    name: str = Field(pattern=NAME_PATTERN)
    role: Annotated[Role, JSON_TEXT]
    password: str | None = Field(default=None, min_length=8, max_length=200)


class LoginRequest(WireModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class ApiToken(ResponseModel):
    id: int
    user: str
    name: str
    created: datetime
    last_used: datetime | None
    expires: datetime | None = None  # None: valid until revoked


def _token_name(name: str) -> str:
    name = name.strip()  # only white space: no name, as none given
    if (c := control_character(name)) is not None:
        raise ValueError(f"a token's name is one line of text, without control characters: it holds {c!r}")
    return name


class TokenCreate(WireModel):
    user: str = Field(min_length=1, max_length=64)
    # shown in the admin's token list: a line break or a bidirectional override would forge another row
    name: Annotated[str, Field(max_length=100), AfterValidator(_token_name)] = ""
    expires_days: float | None = Field(default=None, gt=0, le=3650, description="None: valid until revoked")


class TokenCreated(ApiToken):
    token: str
    role: Role


class FarmStatus(ResponseModel):
    jobs: dict[str, int]
    tasks: dict[str, int]
    workers: dict[str, int]
    managers: dict[str, int]
    # the farm view: workers running a task, awake or asleep without one, offline (or in error)
    workers_busy: int = 0
    workers_idle: int = 0
    workers_offline: int = 0
    tasks_per_minute: float = 0.0  # tasks completed per minute over the last `rate_minutes` whole minutes
    rate_minutes: int = 5


class Me(ResponseModel):
    """Who the presented API token belongs to (`GET /api/v1/me`)."""

    name: str
    role: Role
    # The highest priority the farm's policy ([priority]) lets this role give a job, at submission or later
    # (lowering is always allowed); None: no cap, or an older Server that does not say.
    priority_cap: int | None = None


class FarmVariables(ResponseModel):
    """The farm's path variables as the Server knows them: name -> {platform ("linux", "windows", "macos",
    or "all") -> value}."""

    variables: dict[str, dict[str, str]]


class Health(ResponseModel):
    status: str
    version: str


class Event(ResponseModel):
    """One change on the farm. `id` grows by one per event; SSE clients resume with Last-Event-ID.

    Types: job-created, job-updated (the job without its settings, which never change after submission),
    job-deleted, job-tasks-changed (many tasks of `job_id` changed at once:
    reload them), task-updated, worker-updated, worker-deleted ({id}: a wrangler forgot it), manager-updated,
    manager-deleted (`{id, name}`: its workers went with it), last-rendered (a new preview of `job_id` and, when
    `worker_version` is set, of `worker_id`: fetch the image), reset (the client missed more than the retention
    window and must reload everything).
    """

    id: int
    type: str
    time: datetime
    data: dict[str, Any]

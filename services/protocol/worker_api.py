"""Wire models of the Worker → Manager API: registration, the task life cycle and heartbeats."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from services.protocol.commands import TaskTypeName
from services.protocol.common import (
    ID_MAX,
    JSON_TEXT,
    Count,
    Id,
    Int,
    PathText,
    ReportedTime,
    ResponseModel,
    WireModel,
    bounded_json,
)
from services.protocol.farm import Utilisation, WorkerName
from services.protocol.host_requirements import HostCapabilities
from services.protocol.jobs import Command
from services.protocol.path_mapping import PathMapping
from services.protocol.platforms import PlatformField
from services.protocol.preview import Preview
from services.protocol.states import TaskStatus, Unavailability, WorkerStatus, WorkerStatusRequest
from services.protocol.tags import TAGS_MAX
from services.protocol.workers import Tag

LOG_CHUNK_MAX_LINES = 5_000
LOG_LINE_MAX_CHARS = 10_000
SOFTWARE_MAX_BYTES = 16 * 1024  # a worker's software versions


STATUS_REQUESTED_HEADER = "Tablao-Status-Requested"  # on a 204 to a task request: what a wrangler asked of it
STATUS_LAZY_HEADER = "Tablao-Status-Lazy"  # "1": after the running task (there is none when asking for one)
# on every call of a worker process: a number it drew at start. The Manager answers the calls of the process that
# signed on last for a worker id and refuses an earlier one's with a 409 carrying SUPERSEDED_HEADER: two machines
# cloned with one worker's data folder would otherwise take each other's tasks back at every request
INSTANCE_HEADER = "Tablao-Worker-Instance"
INSTANCE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SUPERSEDED_HEADER = "Tablao-Superseded"
# on a 409 to a task request from a worker the Manager has no sign-on of (it restarted): the finished task's
# updates the request carried were not looked at, so the worker signs on and sends them again (not stale)
SIGN_ON_HEADER = "Tablao-Sign-On-First"


class RegisterRequest(WireModel):
    registration_secret: str = Field(min_length=1, max_length=200)
    name: WorkerName
    platform: PlatformField


class RegisterResponse(ResponseModel):
    worker_id: str
    secret: str


class SignOnRequest(WireModel):
    name: WorkerName
    platform: PlatformField
    task_types: list[TaskTypeName] = Field(min_length=1, max_length=50)
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    software: Annotated[dict[str, str], bounded_json(SOFTWARE_MAX_BYTES)] = Field(default_factory=dict)
    can_restart: bool = False
    # for OpenJD host requirements; None from an older worker (it then meets only requirement-free steps)
    capabilities: HostCapabilities | None = None


class StatusAnswer(ResponseModel):
    status_requested: WorkerStatusRequest | None = None
    lazy: bool = True


class SignOnAnswer(StatusAnswer):
    # the farm's path variables resolved for this worker's platform, as its tasks will carry them: an idle
    # worker confines the process it holds for its next task with them (empty from an older Manager)
    variables: dict[str, str] = Field(default_factory=dict)
    # the highest update seq the Manager has taken from this worker id: a worker whose update buffer is newer
    # than its credentials (its data folder wiped, the credentials kept in the keyring) numbers its updates
    # after it, or they would be taken for repeats and ignored (None from an older Manager)
    last_seq: int | None = Field(default=None, ge=0, le=ID_MAX)
    # seconds without a word from this worker after which the Manager takes its tasks back, the prefetched one
    # included: a worker that has not heard the Manager for a good part of it gives its prefetched task back
    # rather than start it unasked (None from an older Manager: the worker assumes the default, 60 s)
    worker_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class WorkerTaskUpdate(WireModel):
    """One update of a running task. `seq` is per worker, across tasks; the Manager ignores repeats."""

    seq: Int = Field(ge=1, le=ID_MAX)
    handout: Id  # the Manager's hand-out number of this run of the task (AssignedTask.handout)
    status: Annotated[TaskStatus | None, JSON_TEXT] = None  # active, completed, failed, or queued (given back)
    time: ReportedTime | None = None  # with a status: when it happened, by the worker's clock
    activity: str | None = Field(default=None, max_length=1000)
    steps_done: Count | None = None
    steps_total: Count | None = None
    log_lines: list[Annotated[str, StringConstraints(max_length=LOG_LINE_MAX_CHARS)]] = Field(
        default_factory=list, max_length=LOG_CHUNK_MAX_LINES
    )
    output_files: list[PathText] = Field(default_factory=list, max_length=1000)
    preview: Preview | None = None  # a thumbnail of the newest frame the task saved


class WorkerTaskUpdates(WireModel):
    updates: list[WorkerTaskUpdate] = Field(min_length=1, max_length=1000)


class UpdatesAck(ResponseModel):
    last_seq: int


class TaskRequest(WireModel):
    # long polling: an idle worker's request waits at the Manager up to this long for a task
    wait_seconds: float = Field(default=0.0, ge=0, le=60)
    # "report done and ask for the next task" in one round trip
    finished: WorkerTaskUpdates | None = None
    finished_task_id: Id | None = None
    # a prefetch: the worker is running this task (its hand-out) and asks for the one it will run right after
    running_task_id: Id | None = None


class AssignedTask(ResponseModel):
    id: int
    job_id: int
    job_name: str
    name: str
    type: str
    handout: int  # numbers this hand-out of the task at the Manager: updates and may-i-run carry it
    commands: list[Command]
    steps_total: int
    # the farm's path variables, already resolved for this worker's platform
    variables: dict[str, str] = Field(default_factory=dict)
    # the same variables as path mapping rules from the other platforms' paths (for OpenJD sessions)
    path_mappings: list[PathMapping] = Field(default_factory=list)


class MayIRun(ResponseModel):
    may_keep_running: bool
    reason: str = ""
    status_requested: WorkerStatusRequest | None = None
    lazy: bool = True  # the status request waits for the running task (False: now, and the task is given back)


class Heartbeat(WireModel):
    status: Annotated[WorkerStatus, JSON_TEXT]
    current_task_id: Id | None = None
    utilisation: Utilisation | None = None
    # why it claims nothing although awake (the tray's pause, the artist's hours, the user at the machine)
    unavailable: Annotated[Unavailability | None, JSON_TEXT] = None

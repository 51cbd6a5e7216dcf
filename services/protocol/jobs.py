"""Wire models of jobs, tasks, commands, the job log and job types."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from services.protocol.common import JSON_TEXT, Id, Int, ResponseModel, SmallId, WireModel, bounded_json
from services.protocol.file_paths import control_character
from services.protocol.states import JobStatus, Role, TaskStatus
from services.protocol.workers import Tag

NAME_MAX = 200
SETTINGS_MAX_BYTES = 256 * 1024  # a job's settings; big inputs belong in files, not in every job event


def _one_line(name: str) -> str:
    name = name.strip()  # a name pasted from a spreadsheet ends in a line break
    if not name:
        raise ValueError("a job's name cannot be only white space")
    if (c := control_character(name)) is not None:
        raise ValueError(f"a job's name is one line of text, without control characters: it holds {c!r}")
    return name


JobName = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(_one_line)]
"""A job's name: shown in lists, logs, notifications and webhooks' chat lines, where a line break or a
bidirectional override would forge another line or read backwards."""


def _reason_line(reason: str) -> str:
    reason = reason.strip()
    if (c := control_character(reason)) is not None:
        raise ValueError(f"a reason is one line of text, without control characters: it holds {c!r}")
    return reason


Reason = Annotated[str, Field(max_length=500), AfterValidator(_reason_line)]
"""Why a user acted (paused, requeued, released): a line of the job log, where a line break would forge another
entry (a wrangler's approval, say) and a bidirectional override would read backwards."""


class Command(WireModel):
    """One step of a task, run by the Worker's command runner of the same name."""

    name: str = Field(min_length=1, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


class OnTaskFailure(StrEnum):
    FAIL_JOB = "fail-job"  # a failed task fails the job and cancels its unfinished tasks
    CONTINUE = "continue"  # the rest of the job keeps running


# a submission's key (services/protocol/resubmit.py): printable ASCII, no spaces; a UUID, or a pipeline's own
# `shot-010/lighting/v3`
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"


PRIORITY_MAX = 100  # priorities are 0 (last) to this (first)
PRIORITY_DEFAULT = 50


class JobSubmission(WireModel):
    name: JobName
    type: str = Field(min_length=1, max_length=100)
    settings: Annotated[dict[str, Any], bounded_json(SETTINGS_MAX_BYTES)] = Field(default_factory=dict)
    priority: Int = Field(default=PRIORITY_DEFAULT, ge=0, le=PRIORITY_MAX)
    tags: list[Tag] = Field(default_factory=list, max_length=20)  # only workers with all of them run it
    manager_id: SmallId | None = None
    depends_on: list[Id] = Field(default_factory=list, max_length=100)
    max_task_failures: Int = Field(default=3, ge=1, le=100)
    on_task_failure: Annotated[OnTaskFailure, JSON_TEXT] = OnTaskFailure.FAIL_JOB
    start_paused: bool = False


class Job(ResponseModel):
    id: int
    name: str
    type: str
    settings: dict[str, Any]
    priority: int
    submitter: str
    tags: list[str]
    manager_id: int | None
    depends_on: list[int]
    max_task_failures: int
    on_task_failure: OnTaskFailure
    status: JobStatus
    activity: str
    created: datetime
    updated: datetime
    tasks_total: int
    tasks_completed: int
    tasks_failed: int
    tasks_canceled: int = 0
    tasks_active: int  # in progress: assigned, active or soft-failed (of them, tasks_running have started)
    # time (docs/api.md "Time"): seconds by the workers' clocks; the estimate is services.protocol.timing's
    task_types: list[str] = Field(default_factory=list)
    started: datetime | None = None  # its first task's start
    finished: datetime | None = None  # the latest end of one of its tasks
    elapsed_seconds: float | None = None  # first start to now, or to the last end once it has finished
    tasks_timed: int = 0  # completed tasks the mean and the longest are taken from
    task_seconds_mean: float | None = None
    task_seconds_max: float | None = None
    tasks_running: int = 0
    running_since_mean: datetime | None = None  # the mean start of its running tasks
    eta_workers: int | None = None  # workers that can run it (only in answers to GET, not in events)
    eta_seconds: float | None = None  # left to run, by services.protocol.timing.estimate
    eta: datetime | None = None

    @property
    def progress(self) -> float:
        return self.tasks_completed / self.tasks_total if self.tasks_total else 0.0


class TaskSummary(ResponseModel):
    """A task without its commands: what lists and events carry."""

    id: int
    job_id: int
    index: int
    name: str
    type: str
    status: TaskStatus
    attempt: int
    failure_count: int
    manager_id: int | None
    worker_id: str | None
    worker_name: str | None
    activity: str
    steps_done: int
    steps_total: int
    updated: datetime
    started: datetime | None = None  # this attempt's start on its worker
    finished: datetime | None = None
    render_seconds: float | None = None  # finished - started, once it has ended


class Task(TaskSummary):
    commands: list[Command]
    depends_on: list[int]
    log_tail: list[str]
    created: datetime


class JobLogEntry(ResponseModel):
    time: datetime
    user: str
    message: str


class JobDetail(Job):
    tasks: list[TaskSummary]
    tasks_next_cursor: str | None
    log: list[JobLogEntry]


class JobAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    REQUEUE = "requeue"  # every unfinished or failed task, or all of a completed job
    REQUEUE_FAILED = "requeue-failed"  # only failed, soft-failed and canceled tasks


class JobActionRequest(WireModel):
    action: Annotated[JobAction, JSON_TEXT]
    reason: Reason = ""


class PriorityRequest(WireModel):
    priority: Int = Field(ge=0, le=PRIORITY_MAX)


BULK_MAX = 10_000  # ids in one bulk request, of jobs or of tasks


class BulkJobRequest(WireModel):
    """The same change for many jobs; exactly one of `action`, `priority` or `delete`."""

    ids: list[Id] = Field(min_length=1, max_length=BULK_MAX)
    action: Annotated[JobAction | None, JSON_TEXT] = None
    priority: Int | None = Field(default=None, ge=0, le=PRIORITY_MAX)
    delete: bool = False
    reason: Reason = ""


class BulkItemResult(ResponseModel):
    id: int
    ok: bool
    error: str | None = None


class BulkResult(ResponseModel):
    results: list[BulkItemResult]


TaskAction = Literal["requeue", "cancel"]


class TaskActionRequest(WireModel):
    action: TaskAction
    reason: Reason = ""


class BulkTaskRequest(WireModel):
    """The same action for many tasks: each is refused or done on its own, as `POST /tasks/{id}/status` would."""

    ids: list[Id] = Field(min_length=1, max_length=BULK_MAX)  # a repeated id is acted on once
    action: TaskAction
    reason: Reason = ""


class JobTypeInfo(ResponseModel):
    name: str
    label: str
    description: str
    settings_schema: dict[str, Any]
    # The farm's policy ([submit]) for the caller: whether they may submit the type, and which roles may. An
    # older Server says neither: every type is offered, and the Server refuses at submission as it always did.
    may_submit: bool = True
    submit_roles: list[Role] | None = None

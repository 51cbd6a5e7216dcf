"""Wire models of the Manager → Server link: claiming tasks and pushing batched updates."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from services.protocol import variable_names
from services.protocol.cli_args import http_url
from services.protocol.common import (
    ID_MAX,
    JSON_TEXT,
    Count,
    Id,
    Int,
    LongText,
    PlatformText,
    ReportedTime,
    ResponseModel,
    ShortText,
    WireModel,
    WorkerIdText,
    bounded_json,
)
from services.protocol.failures import BLOCKLIST_REPORT_MAX, BlocklistReport, Unblock
from services.protocol.farm import ReportedName, Utilisation
from services.protocol.host_requirements import HostCapabilities
from services.protocol.jobs import Command, OnTaskFailure
from services.protocol.preview import PREVIEWS_PER_BATCH, PreviewReport
from services.protocol.states import TaskStatus, Unavailability, WorkerStatus, WorkerStatusRequest
from services.protocol.tags import normal_tag, required_tags

LOG_TAIL_LINES = 20
TOKEN_MAX_CHARS = 200  # API tokens are 47 characters; longer strings are not tokens
SOFTWARE_MAX_BYTES = 16 * 1024  # a worker's software versions
HELD_TASK_IDS_MAX = 100_000  # task ids one batch may renew the leases of
VariableName = Annotated[
    str, StringConstraints(pattern=f"^{variable_names.NAME_PATTERN}$", max_length=variable_names.NAME_MAX)
]


class ClaimRequest(WireModel):
    capacity: Int = Field(ge=0, le=10_000)
    task_types: list[ShortText] = Field(default_factory=list, max_length=1000)
    # tags offered by the Manager's workers; a job with tags goes only where all of them are offered
    tags: list[ShortText] = Field(default_factory=list, max_length=1000)
    # long polling: with nothing runnable, the Server holds the request up to this long and answers as soon as
    # something becomes runnable (stay below the client's read timeout)
    wait_seconds: float = Field(default=0.0, ge=0.0, le=25.0)


class ClaimedTask(ResponseModel):
    id: int
    job_id: int
    job_name: str
    job_priority: int
    job_created: datetime
    job_tags: list[str]
    max_task_failures: int
    on_task_failure: OnTaskFailure
    index: int
    name: str
    type: str
    attempt: int  # the fencing token: every update about this hand-out carries it
    failure_count: int
    commands: list[Command]
    steps_total: int
    # The attempt a pause took back from this same Manager, when this hand-out follows it after a resume: a run
    # of that attempt still going here carries on as this one, and one that completed stands for it
    resumes_attempt: int | None = None

    @field_validator("job_tags")
    @classmethod
    def _as_tags(cls, tags: list[str]) -> list[str]:
        # a task a Manager held from before the tag rule (its store) is matched as the Server now matches it
        return sorted(required_tags(tags))


class ClaimResponse(ResponseModel):
    tasks: list[ClaimedTask]
    lease_seconds: float
    # the Server holds new instructions for this Manager (a wrangler's request): send an update batch now to
    # collect them, rather than at the next keep-alive. A waiting claim ends early to say so.
    instructions: bool = False


# each Manager's store id, sent with every call to the Server (server/api/manager_stores.py): a uuid4's hex
MANAGER_STORE_HEADER = "Tablao-Manager-Store"
MANAGER_STORE_PATTERN = re.compile(r"[0-9a-f]{32}")


class TaskUpdate(WireModel):
    """What happened to one task at the Manager. Fields left None are unchanged."""

    task_id: Id
    attempt: Id
    status: Annotated[TaskStatus | None, JSON_TEXT] = None  # queued = given back unstarted
    worker_id: WorkerIdText | None = None
    worker_name: ReportedName | None = None
    activity: str | None = Field(default=None, max_length=1000)
    steps_done: Count | None = None
    steps_total: Count | None = None
    log_tail: list[LongText] = Field(default_factory=list, max_length=LOG_TAIL_LINES)
    failure_count: Count | None = None
    time: ReportedTime | None = None  # when it happened: with a final status, the end of the run
    started: ReportedTime | None = None  # with status active: when the run began on its worker (kept by coalescing)
    # with status queued: given back because no worker of this Manager may run it (every one that could is
    # blocklisted for its job); the Server offers it to other Managers, or fails it when there is none
    unrunnable_here: bool = False


# a worker signs on with tags (services/protocol/tags.py); one a Manager kept from before the rule is reported as
# the tag it stands for, never as text with line breaks or controls, and without leaving the worker out
ReportedTag = Annotated[ShortText, AfterValidator(normal_tag)]


class WorkerReport(WireModel):
    id: WorkerIdText
    name: ReportedName
    platform: PlatformText
    task_types: list[ShortText] = Field(max_length=1000)
    tags: list[ReportedTag] = Field(max_length=1000)
    software: Annotated[dict[str, str], bounded_json(SOFTWARE_MAX_BYTES)] = Field(default_factory=dict)
    status: Annotated[WorkerStatus, JSON_TEXT]
    current_task_id: Id | None = None
    next_task_id: Id | None = None  # prefetched: leased to the worker, which runs it right after the current one
    last_seen: ReportedTime | None = None
    utilisation: Utilisation | None = None
    unavailable: Annotated[Unavailability | None, JSON_TEXT] = None
    capabilities: HostCapabilities | None = None  # for OpenJD host requirements
    # the wrangler's request the Manager holds for the worker, and its number: a request with this number and
    # no status requested any more is done, and the Server stops asking
    status_requested: Annotated[WorkerStatusRequest | None, JSON_TEXT] = None
    request_id: Count = 0


WORKER_REPORTS_MAX = 1000
"""Worker reports in one batch: the rows of one write transaction at the Server (a Manager sends all of its workers
in batches of at most this many; 10,000 in one held the Server's writes 6 - 8 s)."""


class UpdateBatch(WireModel):
    """Sent in order; `seq` grows by one per batch, so the Server applies each batch exactly once."""

    seq: Int = Field(ge=1, le=ID_MAX)
    task_updates: list[TaskUpdate] = Field(default_factory=list, max_length=10_000)
    workers: list[WorkerReport] = Field(default_factory=list, max_length=WORKER_REPORTS_MAX)
    # tasks the Manager still holds: their leases are renewed
    held_task_ids: list[Id] = Field(default_factory=list, max_length=HELD_TASK_IDS_MAX)
    # the latest thumbnails of jobs and workers not sent yet: a view like the worker states, applied even in a
    # repeated batch (the newest per job and per worker wins at the Server)
    previews: list[PreviewReport] = Field(default_factory=list, max_length=PREVIEWS_PER_BATCH)
    # blocklist entries that changed (all of them with each lease renewal, `blocklist_complete`)
    blocklist: list[BlocklistReport] = Field(default_factory=list, max_length=BLOCKLIST_REPORT_MAX)
    blocklist_complete: bool = False
    # where the Server's users reach this Manager (full task logs), e.g. http://render-a.lan:8471
    client_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # the names of this Manager's path variables (sent with each lease renewal), so the Server can refuse a job
    # whose path names one no worker knows; None: not said (an older Manager, or too many to tell)
    variables: list[VariableName] | None = Field(default=None, max_length=variable_names.REPORTED_MAX)

    @field_validator("client_url")
    @classmethod
    def _usable_url(cls, value: str | None) -> str | None:
        """A URL the Manager's own start would take (cli_args.http_url): users' clients send their token there, so
        a port past 65535, user info (`http://a@b`), a query or a bidirectional override is refused, not shown."""
        if value is None:
            return None
        if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
            raise ValueError("a Manager's URL holds no control or formatting characters")
        http_url(value)
        return value


class RejectedUpdate(ResponseModel):
    task_id: int
    reason: str
    attempt: int | None = None  # the attempt the refused update carried


class WorkerInstruction(ResponseModel):
    worker_id: str
    status: WorkerStatusRequest
    lazy: bool
    request_id: int = 0  # numbers the wrangler's requests of this worker (0: a Server that does not number them)


class WorkerTags(ResponseModel):
    worker_id: str
    tags: list[str]


class JobPriority(ResponseModel):
    job_id: int
    priority: int


class UpdateAck(ResponseModel):
    """The Server's answer; it carries what the Server wants of the Manager (calls go bottom-up only)."""

    last_seq: int
    rejected: list[RejectedUpdate] = Field(default_factory=list)
    cancel_task_ids: list[int] = Field(default_factory=list)
    upload_log_task_ids: list[int] = Field(default_factory=list)
    # jobs a wrangler requeued: forget which workers failed them (the cause may be fixed)
    reset_blocklist_job_ids: list[int] = Field(default_factory=list)
    # jobs whose priority changed while this Manager holds tasks of them: reorder those tasks
    job_priorities: list[JobPriority] = Field(default_factory=list)
    worker_requests: list[WorkerInstruction] = Field(default_factory=list)
    # blocklist entries a wrangler cleared: those workers may run those tasks of the job again
    unblock: list[Unblock] = Field(default_factory=list)
    # tags a wrangler gave workers of this Manager (they replace the ones the workers signed on with)
    worker_tags: list[WorkerTags] = Field(default_factory=list)
    # workers a wrangler forgot: the Manager forgets them too (their credentials stop working)
    forget_worker_ids: list[str] = Field(default_factory=list)
    lease_seconds: float


class ClientTokenCheck(WireModel):
    """The Manager asks the Server who holds a client's API token (to serve full task logs)."""

    token: str = Field(min_length=1, max_length=TOKEN_MAX_CHARS)


class ClientIdentity(ResponseModel):
    user: str
    role: str
    expires: datetime | None = None  # the token's expiry: the Manager remembers it no longer than that

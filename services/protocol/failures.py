"""Wire models of a job's failures and of task logs: blocklists, dependencies that will never complete, and
where a task's full log is read (the Manager that ran it, or the Server's uploaded copy)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from services.protocol.common import Id, Int, ResponseModel, WireModel, WorkerIdText, WorkerKey
from services.protocol.jobs import Reason

WorkerId = WorkerIdText
TaskType = Annotated[str, StringConstraints(min_length=1, max_length=64)]
BLOCKLIST_REPORT_MAX = 10_000  # entries per update batch; a Manager with more sends the rest with the next ones


class BlocklistReport(WireModel):
    """Manager → Server: how often a worker failed a job's tasks of one type; 0 failures: the entry is gone."""

    job_id: Id
    worker_id: WorkerId
    task_type: TaskType
    worker_name: WorkerKey = ""
    failures: Int = Field(ge=0, le=1_000_000)
    threshold: Int = Field(ge=1, le=1_000_000)  # the Manager's blocklist threshold: at it, the worker is blocked


class BlocklistKey(WireModel):
    """One entry of a job's blocklist: a worker and a task type."""

    worker_id: WorkerId
    task_type: TaskType


class Unblock(ResponseModel):
    """Server → Manager (in the update answer): forget this entry, the worker may run these tasks again."""

    job_id: int
    worker_id: str
    task_type: str


class BlocklistEntry(ResponseModel):
    job_id: int
    worker_id: str
    worker_name: str
    task_type: str
    failures: int
    threshold: int
    blocked: bool  # failures >= threshold: the worker may not run the job's tasks of this type
    manager_id: int
    manager_name: str
    updated: datetime


class BlocklistClearRequest(WireModel):
    entries: list[BlocklistKey] = Field(min_length=1, max_length=1000)


class BlocklistClearResult(ResponseModel):
    cleared: int  # entries found and cleared; the Managers forget them with their next update batch


class ReleaseRequest(WireModel):
    """Drop dependencies of a job; None: every dependency that failed, was canceled or is gone."""

    job_ids: list[Id] | None = Field(default=None, min_length=1, max_length=100)
    reason: Reason = ""


class Dependency(ResponseModel):
    job_id: int
    name: str | None  # None: the job was deleted
    status: str | None
    blocking: bool  # failed or canceled: the dependent job would wait for ever


class LogSource(ResponseModel):
    """Where the app reads a task's full log: the Manager that ran it (its client address), else the Server."""

    task_id: int
    task_status: str
    manager_id: int | None
    manager_name: str | None
    manager_url: str | None  # None: the Manager never told the Server its client address
    manager_online: bool
    server_copy_bytes: int | None  # the copy the Manager uploaded to the Server, None: none yet
    log_tail: list[str]  # the Server's last lines: shown at once, and when nothing else is reachable


class LogPart(ResponseModel):
    """Part of a full task log, from the Manager or the Server's copy: `first` / `last` are the cursors for
    the next `before` / `after` (chunk ids at a Manager, byte offsets at the Server), `earlier` whether there
    is more before it."""

    text: str
    first: int
    last: int
    earlier: bool

    @classmethod
    def from_answer(cls, text: str, headers: Mapping[str, str]) -> LogPart:
        def number(name: str) -> int:
            raw = headers.get(name, "0")
            return int(raw) if raw.isdigit() else 0

        return cls(text=text, first=number("x-log-first"), last=number("x-log-last"),
                   earlier=headers.get("x-log-earlier") == "1")  # fmt: skip

"""A typed async client of the Server's client API, used by the CLI and the desktop app.

Errors come back as `ApiError` with the Server's one-line `detail` and per-field errors. For live views,
open `events()` first and load snapshots after: events are full objects, so applying one twice is harmless.

A client may be given several addresses of one farm's Servers (comma-separated): when no connection can be made
to the one in use, the call goes to the next at once (nothing was sent); when one fails after that, or answers
502/503/504 from a load balancer, the call fails as usual and the next call, or the event stream's reconnection,
goes to the next address; `Last-Event-ID` resumes on any Server of the farm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from services.protocol import resubmit
from services.protocol.common import Page
from services.protocol.failures import BlocklistEntry, Dependency, LogPart, LogSource
from services.protocol.farm import (
    ApiToken,
    FarmStatus,
    FarmVariables,
    Health,
    Manager,
    ManagerCreated,
    Me,
    TokenCreated,
    User,
    Worker,
)
from services.protocol.jobs import (
    BulkResult,
    Job,
    JobAction,
    JobDetail,
    JobLogEntry,
    JobSubmission,
    JobTypeInfo,
    Task,
    TaskSummary,
)
from services.protocol.preview import LastRendered
from services.protocol.server_answers import (
    AnswerTimeout,
    ApiError,
    BadAnswer,
    json_of,
    raise_for_error,
    valid,
)
from services.protocol.server_transport import ServerTransport
from services.protocol.states import JobStatus, Role, TaskStatus, WorkerStatusRequest
from services.protocol.workers import UtilisationHistory

# the errors every caller of the client catches: defined with the answers' checks, importable from here
__all__ = ["AnswerTimeout", "ApiError", "BadAnswer", "ServerClient", "raise_for_error"]


def segment(value: int | str) -> str:
    """`value` as one path segment: a worker id holding `/` or `..` (a hostile Manager's) must not make a request
    another route's (`/workers/x/../../tokens/1` was `DELETE /tokens/1`)."""
    return quote(str(value), safe="")


WORKERS_PAGE = 1000  # the Server's default and largest page of workers


class Cleared(BaseModel):
    cleared: int


@dataclass(frozen=True)
class Submitted:
    job: Job
    made_before: bool  # by an earlier call with the same key, not this one


class ServerClient(ServerTransport):
    """The Server's client API, one method per route (the plumbing: server_transport.py)."""

    # ---- farm ----
    async def health(self) -> Health:
        return await self._model(Health, "GET", "/health")

    async def me(self) -> Me:
        return await self._model(Me, "GET", "/me")

    async def farm_variables(self) -> dict[str, dict[str, str]]:
        return (await self._model(FarmVariables, "GET", "/farm/variables")).variables

    async def farm_status(self) -> FarmStatus:
        return await self._model(FarmStatus, "GET", "/farm/status")

    async def job_types(self) -> list[JobTypeInfo]:
        return await self._models(JobTypeInfo, "GET", "/job-types")

    async def job_type(self, name: str) -> JobTypeInfo:
        return await self._model(JobTypeInfo, "GET", f"/job-types/{name}")

    async def workers_page(
        self, limit: int = WORKERS_PAGE, cursor: str | None = None
    ) -> tuple[list[Worker], str | None]:
        """A page of the workers by name, and the cursor of the next page (None at the end)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await self._listed_page(Worker, "/workers", params=params)

    async def workers(self, page_size: int = WORKERS_PAGE) -> list[Worker]:
        """Every worker, a page at a time: a farm may have more than one page holds (a Server from before paging
        answers them all in one page, without a cursor)."""
        out: list[Worker] = []
        cursor: str | None = None
        while True:
            page, next_cursor = await self.workers_page(page_size, cursor)
            out.extend(page)
            if next_cursor is None:
                return out
            if not page or next_cursor == cursor:  # no way forward: a broken Server would have it ask for ever
                raise BadAnswer(200, f"the workers' page after cursor {cursor!r} leads nowhere")
            cursor = next_cursor

    async def request_worker_status(self, worker_id: str, status: WorkerStatusRequest, lazy: bool = True) -> Worker:
        body = {"status": status, "lazy": lazy}
        return await self._model(Worker, "POST", f"/workers/{segment(worker_id)}/status-request", json=body)

    async def last_rendered(self, scope: str, owner: int | str) -> tuple[LastRendered, bytes] | None:
        """The latest preview of a job (scope "jobs") or a worker ("workers"): what it shows and the image;
        None before the first."""
        try:
            info = await self._model(LastRendered, "GET", f"/{scope}/{segment(owner)}/last-rendered/info")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        image = await self._bytes(f"/{scope}/{segment(owner)}/last-rendered")
        return None if image is None else (info, image)

    async def set_worker_tags(self, worker_id: str, tags: Sequence[str]) -> Worker:
        body = {"tags": list(tags)}
        return await self._model(Worker, "PUT", f"/workers/{segment(worker_id)}/tags", json=body)

    async def forget_worker(self, worker_id: str) -> None:
        await self._call("DELETE", f"/workers/{segment(worker_id)}")

    async def worker_utilisation(
        self, worker_id: str, since: datetime | None = None, limit: int = 3000
    ) -> UtilisationHistory:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        path = f"/workers/{segment(worker_id)}/utilisation"
        return await self._page(UtilisationHistory, path, {"samples": limit}, params=params)

    async def managers(self) -> list[Manager]:
        return await self._models(Manager, "GET", "/managers")

    async def create_manager(self, name: str) -> ManagerCreated:
        return await self._model(ManagerCreated, "POST", "/managers", json={"name": name})

    # ---- jobs ----
    async def submit_job(self, job: JobSubmission | dict[str, Any], idempotency_key: str | None = None) -> Job:
        """The job made; sent again after a lost answer, never made twice (resubmit.py)."""
        return (await self.submit(job, idempotency_key)).job

    async def submit(self, job: JobSubmission | dict[str, Any], idempotency_key: str | None = None) -> Submitted:
        """`submit_job`, saying whether the job was made before this call: its key (one of the caller's, e.g. a
        pipeline's shot and version; a new one if None) was a repeat at the first try."""
        body = job.model_dump(mode="json") if isinstance(job, JobSubmission) else job
        headers = {resubmit.HEADER: idempotency_key or resubmit.new_key()}
        tries = 0

        async def send() -> Submitted:
            nonlocal tries
            tries += 1
            response = await self._response("POST", "/jobs", json=body, headers=headers)
            job = valid(Job, json_of(response), response.status_code)
            return Submitted(job=job, made_before=response.status_code == 200 and tries == 1)

        return await resubmit.until_answered(send, within=self.deadline)

    async def list_jobs(
        self,
        *,
        status: Sequence[JobStatus] = (),
        submitter: str | None = None,
        type: str | None = None,
        search: str | None = None,
        sort: str = "-created",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Job]:
        params: dict[str, Any] = {"sort": sort, "limit": limit}
        if status:
            params["status"] = [str(s) for s in status]
        for key, value in (("submitter", submitter), ("type", type), ("search", search), ("cursor", cursor)):
            if value:
                params[key] = value
        return await self._page(Page[Job], "/jobs", {"items": limit}, params=params)

    async def get_job(self, job_id: int, tasks_limit: int = 100) -> JobDetail:
        params = {"tasks_limit": tasks_limit}
        return await self._page(JobDetail, f"/jobs/{job_id}", {"tasks": tasks_limit}, params=params)

    async def job_action(self, job_id: int, action: JobAction, reason: str = "") -> Job:
        body = {"action": action, "reason": reason}
        return await self._model(Job, "POST", f"/jobs/{job_id}/status", json=body)

    async def set_priority(self, job_id: int, priority: int) -> Job:
        return await self._model(Job, "POST", f"/jobs/{job_id}/priority", json={"priority": priority})

    async def bulk(
        self,
        ids: Sequence[int],
        *,
        action: JobAction | None = None,
        priority: int | None = None,
        delete: bool = False,
        reason: str = "",
    ) -> BulkResult:
        body: dict[str, Any] = {"ids": list(ids), "delete": delete, "reason": reason}
        if action is not None:
            body["action"] = action
        if priority is not None:
            body["priority"] = priority
        return await self._model(BulkResult, "POST", "/jobs/bulk", json=body)

    async def delete_job(self, job_id: int) -> None:
        await self._call("DELETE", f"/jobs/{job_id}")

    async def list_tasks(
        self, job_id: int, *, status: Sequence[TaskStatus] = (), limit: int = 100, cursor: str | None = None
    ) -> Page[TaskSummary]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = [str(s) for s in status]
        if cursor:
            params["cursor"] = cursor
        return await self._page(Page[TaskSummary], f"/jobs/{job_id}/tasks", {"items": limit}, params=params)

    async def all_tasks(self, job_id: int, page_size: int = 1000) -> list[TaskSummary]:
        out: list[TaskSummary] = []
        cursor = None
        while True:
            page = await self.list_tasks(job_id, limit=page_size, cursor=cursor)
            out.extend(page.items)
            if not page.next_cursor:
                return out
            cursor = page.next_cursor

    async def job_log(self, job_id: int, limit: int = 1000) -> list[JobLogEntry]:
        return await self._models(JobLogEntry, "GET", f"/jobs/{job_id}/log", params={"limit": limit})

    async def list_workers(self) -> list[Worker]:
        return await self.workers()

    async def get_task(self, task_id: int) -> Task:
        return await self._model(Task, "GET", f"/tasks/{task_id}")

    async def task_action(self, task_id: int, action: str, reason: str = "") -> Task:
        body = {"action": action, "reason": reason}
        return await self._model(Task, "POST", f"/tasks/{task_id}/status", json=body)

    async def task_bulk(self, ids: Sequence[int], action: str, reason: str = "") -> BulkResult:
        """The same action for up to 10,000 tasks, each done or refused on its own; a Server from before the route
        answers 405 (an ApiError)."""
        body = {"ids": list(ids), "action": action, "reason": reason}
        return await self._model(BulkResult, "POST", "/tasks/bulk", json=body)

    # ---- a job's failures, task logs (services/protocol/failures.py) ----
    async def blocklist(self, job_id: int) -> list[BlocklistEntry]:
        return await self._models(BlocklistEntry, "GET", f"/jobs/{job_id}/blocklist")

    async def clear_blocklist(self, job_id: int, entries: Sequence[tuple[str, str]]) -> int:
        body = {"entries": [{"worker_id": w, "task_type": t} for w, t in entries]}
        return (await self._model(Cleared, "POST", f"/jobs/{job_id}/blocklist/clear", json=body)).cleared

    async def dependencies(self, job_id: int) -> list[Dependency]:
        return await self._models(Dependency, "GET", f"/jobs/{job_id}/dependencies")

    async def release_job(self, job_id: int, job_ids: list[int] | None = None, reason: str = "") -> Job:
        body: dict[str, Any] = {"reason": reason} if job_ids is None else {"job_ids": job_ids, "reason": reason}
        return await self._model(Job, "POST", f"/jobs/{job_id}/release", json=body)

    async def log_source(self, task_id: int) -> LogSource:
        return await self._model(LogSource, "GET", f"/tasks/{task_id}/log-source")

    async def request_log_copy(self, task_id: int) -> None:
        await self._call("POST", f"/tasks/{task_id}/log/request")

    async def log_copy(self, task_id: int, **params: int) -> LogPart:
        """The Server's copy of a task's full log: `tail=`, `before=` or `after=` (with `limit=`) bytes."""
        response = await self._response("GET", f"/tasks/{task_id}/log", params=params)
        return LogPart.from_answer(response.text, response.headers)

    # ---- auth ----
    async def login(self, username: str, password: str) -> TokenCreated:
        body = {"username": username, "password": password}
        return await self._model(TokenCreated, "POST", "/auth/login", json=body)

    async def users(self) -> list[User]:
        return await self._models(User, "GET", "/users")

    async def add_user(self, name: str, role: Role, password: str | None = None) -> User:
        body = {"name": name, "role": role, "password": password}
        return await self._model(User, "POST", "/users", json=body)

    async def tokens(self) -> list[ApiToken]:
        return await self._models(ApiToken, "GET", "/tokens")

    async def create_token(self, user: str, name: str = "") -> TokenCreated:
        return await self._model(TokenCreated, "POST", "/tokens", json={"user": user, "name": name})

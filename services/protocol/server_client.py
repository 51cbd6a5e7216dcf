"""A typed async client of the Server's client API, used by the CLI and the desktop app.

Errors come back as `ApiError` with the Server's one-line `detail` and per-field errors. For live views,
open `events()` first and load snapshots after: events are full objects, so applying one twice is harmless.

A client may be given several addresses of one farm's Servers (comma-separated): when the one in use does not
answer (no connection, or 502/503/504 from a load balancer), the call fails as usual and the next call, or the
event stream's reconnection, goes to the next address; `Last-Event-ID` resumes on any Server of the farm.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import httpx

from services.protocol import API_PREFIX
from services.protocol.common import FieldError, Page
from services.protocol.failures import BlocklistEntry, Dependency, LogPart, LogSource
from services.protocol.farm import (
    ApiToken,
    Event,
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
from services.protocol.states import JobStatus, Role, TaskStatus, WorkerStatusRequest
from services.protocol.tls import client_context
from services.protocol.workers import UtilisationHistory


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.errors = errors or []

    def field_errors(self) -> dict[str, str]:
        return {e.field: e.message for e in self.errors}


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = str(body.get("detail", response.reason_phrase))
        errors = [FieldError.model_validate(e) for e in body.get("errors", [])]
    except (ValueError, AttributeError):
        detail, errors = response.text[:500] or response.reason_phrase, []
    raise ApiError(response.status_code, detail, errors)


_UNAVAILABLE = (502, 503, 504)  # a load balancer with no Server behind it, or a Server going down


class ServerClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.urls = [u.strip().rstrip("/") for u in base_url.split(",") if u.strip()] or [base_url.rstrip("/")]
        self._current = 0
        # https is verified against ca_bundle, else TABLAO_CA_BUNDLE, else the system's CAs (tls.py)
        self._clients = [
            httpx.AsyncClient(
                base_url=url + API_PREFIX,
                headers=headers,
                timeout=timeout,
                transport=transport,
                verify=client_context(ca_bundle) if url.startswith("https:") else True,
            )
            for url in self.urls
        ]

    @property
    def base_url(self) -> str:
        """The Server address in use (the next one after it stops answering)."""
        return self.urls[self._current]

    @property
    def _http(self) -> httpx.AsyncClient:
        return self._clients[self._current]

    def _move_on(self, failed: int) -> None:
        if self._current == failed and len(self.urls) > 1:
            self._current = (failed + 1) % len(self.urls)

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._response(method, path, **kwargs)
        return response.json() if response.content else None

    async def _response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        index = self._current
        try:
            response = await self._clients[index].request(method, path, **kwargs)
        except httpx.TransportError:
            self._move_on(index)
            raise
        if response.status_code in _UNAVAILABLE:
            self._move_on(index)
        raise_for_error(response)
        return response

    async def _bytes(self, path: str) -> bytes | None:
        """A binary GET; None on 404."""
        index = self._current
        try:
            response = await self._clients[index].get(path)
        except httpx.TransportError:
            self._move_on(index)
            raise
        if response.status_code == 404:
            return None
        raise_for_error(response)
        return response.content

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any route under /api/v1 (the parsed JSON answer, or None): for clients of routes listed elsewhere,
        e.g. admin_client.py."""
        return await self._call(method, path, **kwargs)

    # ---- farm ----
    async def health(self) -> Health:
        return Health.model_validate(await self._call("GET", "/health"))

    async def me(self) -> Me:
        return Me.model_validate(await self._call("GET", "/me"))

    async def farm_variables(self) -> dict[str, dict[str, str]]:
        return FarmVariables.model_validate(await self._call("GET", "/farm/variables")).variables

    async def farm_status(self) -> FarmStatus:
        return FarmStatus.model_validate(await self._call("GET", "/farm/status"))

    async def job_types(self) -> list[JobTypeInfo]:
        return [JobTypeInfo.model_validate(x) for x in await self._call("GET", "/job-types")]

    async def job_type(self, name: str) -> JobTypeInfo:
        return JobTypeInfo.model_validate(await self._call("GET", f"/job-types/{name}"))

    async def workers(self) -> list[Worker]:
        return [Worker.model_validate(x) for x in await self._call("GET", "/workers")]

    async def request_worker_status(self, worker_id: str, status: WorkerStatusRequest, lazy: bool = True) -> Worker:
        body = {"status": status, "lazy": lazy}
        return Worker.model_validate(await self._call("POST", f"/workers/{worker_id}/status-request", json=body))

    async def last_rendered(self, scope: str, owner: int | str) -> tuple[LastRendered, bytes] | None:
        """The latest preview of a job (scope "jobs") or a worker ("workers"): what it shows and the image;
        None before the first."""
        try:
            info = LastRendered.model_validate(await self._call("GET", f"/{scope}/{owner}/last-rendered/info"))
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        image = await self._bytes(f"/{scope}/{owner}/last-rendered")
        return None if image is None else (info, image)

    async def set_worker_tags(self, worker_id: str, tags: Sequence[str]) -> Worker:
        body = {"tags": list(tags)}
        return Worker.model_validate(await self._call("PUT", f"/workers/{worker_id}/tags", json=body))

    async def forget_worker(self, worker_id: str) -> None:
        await self._call("DELETE", f"/workers/{worker_id}")

    async def worker_utilisation(
        self, worker_id: str, since: datetime | None = None, limit: int = 3000
    ) -> UtilisationHistory:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        return UtilisationHistory.model_validate(
            await self._call("GET", f"/workers/{worker_id}/utilisation", params=params)
        )

    async def managers(self) -> list[Manager]:
        return [Manager.model_validate(x) for x in await self._call("GET", "/managers")]

    async def create_manager(self, name: str) -> ManagerCreated:
        return ManagerCreated.model_validate(await self._call("POST", "/managers", json={"name": name}))

    # ---- jobs ----
    async def submit_job(self, job: JobSubmission | dict[str, Any]) -> Job:
        body = job.model_dump(mode="json") if isinstance(job, JobSubmission) else job
        return Job.model_validate(await self._call("POST", "/jobs", json=body))

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
        return Page[Job].model_validate(await self._call("GET", "/jobs", params=params))

    async def get_job(self, job_id: int, tasks_limit: int = 100) -> JobDetail:
        return JobDetail.model_validate(await self._call("GET", f"/jobs/{job_id}", params={"tasks_limit": tasks_limit}))

    async def job_action(self, job_id: int, action: JobAction, reason: str = "") -> Job:
        body = {"action": action, "reason": reason}
        return Job.model_validate(await self._call("POST", f"/jobs/{job_id}/status", json=body))

    async def set_priority(self, job_id: int, priority: int) -> Job:
        return Job.model_validate(await self._call("POST", f"/jobs/{job_id}/priority", json={"priority": priority}))

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
        return BulkResult.model_validate(await self._call("POST", "/jobs/bulk", json=body))

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
        return Page[TaskSummary].model_validate(await self._call("GET", f"/jobs/{job_id}/tasks", params=params))

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
        rows = await self._call("GET", f"/jobs/{job_id}/log", params={"limit": limit})
        return [JobLogEntry.model_validate(x) for x in rows]

    async def get_task(self, task_id: int) -> Task:
        return Task.model_validate(await self._call("GET", f"/tasks/{task_id}"))

    async def task_action(self, task_id: int, action: str, reason: str = "") -> Task:
        body = {"action": action, "reason": reason}
        return Task.model_validate(await self._call("POST", f"/tasks/{task_id}/status", json=body))

    # ---- a job's failures, task logs (services/protocol/failures.py) ----
    async def blocklist(self, job_id: int) -> list[BlocklistEntry]:
        return [BlocklistEntry.model_validate(x) for x in await self._call("GET", f"/jobs/{job_id}/blocklist")]

    async def clear_blocklist(self, job_id: int, entries: Sequence[tuple[str, str]]) -> int:
        body = {"entries": [{"worker_id": w, "task_type": t} for w, t in entries]}
        return int((await self._call("POST", f"/jobs/{job_id}/blocklist/clear", json=body))["cleared"])

    async def dependencies(self, job_id: int) -> list[Dependency]:
        return [Dependency.model_validate(x) for x in await self._call("GET", f"/jobs/{job_id}/dependencies")]

    async def release_job(self, job_id: int, job_ids: list[int] | None = None, reason: str = "") -> Job:
        body: dict[str, Any] = {"reason": reason} if job_ids is None else {"job_ids": job_ids, "reason": reason}
        return Job.model_validate(await self._call("POST", f"/jobs/{job_id}/release", json=body))

    async def log_source(self, task_id: int) -> LogSource:
        return LogSource.model_validate(await self._call("GET", f"/tasks/{task_id}/log-source"))

    async def request_log_copy(self, task_id: int) -> None:
        await self._call("POST", f"/tasks/{task_id}/log/request")

    async def log_copy(self, task_id: int, **params: int) -> LogPart:
        """The Server's copy of a task's full log: `tail=`, `before=` or `after=` (with `limit=`) bytes."""
        response = await self._response("GET", f"/tasks/{task_id}/log", params=params)
        return LogPart.from_answer(response.text, response.headers)

    # ---- auth ----
    async def login(self, username: str, password: str) -> TokenCreated:
        body = {"username": username, "password": password}
        return TokenCreated.model_validate(await self._call("POST", "/auth/login", json=body))

    async def users(self) -> list[User]:
        return [User.model_validate(x) for x in await self._call("GET", "/users")]

    async def add_user(self, name: str, role: Role, password: str | None = None) -> User:
        body = {"name": name, "role": role, "password": password}
        return User.model_validate(await self._call("POST", "/users", json=body))

    async def tokens(self) -> list[ApiToken]:
        return [ApiToken.model_validate(x) for x in await self._call("GET", "/tokens")]

    async def create_token(self, user: str, name: str = "") -> TokenCreated:
        return TokenCreated.model_validate(await self._call("POST", "/tokens", json={"user": user, "name": name}))

    # ---- events ----
    async def events(
        self, last_event_id: int | None = None, on_open: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Yield events as they come. Ends when the connection drops; resume with the last id seen.

        `on_open` is awaited once the stream is open (its start is then fixed) and before any event is read:
        the place to load snapshots so that no change falls between the snapshot and the stream.
        """
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        index = self._current
        try:
            # closed at once however the caller leaves (its task canceled while it handles an event, too), so the
            # streaming response and its connection are released now, not when a garbage collection finds them
            async with contextlib.aclosing(self._stream(self._clients[index], headers, on_open)) as stream:
                async for event in stream:
                    yield event
        except httpx.TransportError:
            self._move_on(index)  # the caller reconnects, to the next Server
            raise

    async def _stream(
        self,
        http: httpx.AsyncClient,
        headers: dict[str, str],
        on_open: Callable[[], Awaitable[None]] | None,
    ) -> AsyncGenerator[Event, None]:
        timeout = httpx.Timeout(10.0, read=60.0)
        async with http.stream("GET", "/events", headers=headers, timeout=timeout) as response:
            if response.status_code in _UNAVAILABLE:
                self._move_on(self._clients.index(http))
            if not response.is_success:
                await response.aread()
                raise_for_error(response)
            if on_open is not None:
                await on_open()
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    yield Event.model_validate(json.loads("\n".join(data)))
                    data = []

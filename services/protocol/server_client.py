"""A typed async client of the Server's client API, used by the CLI and the desktop app.

Errors come back as `ApiError` with the Server's one-line `detail` and per-field errors. For live views,
open `events()` first and load snapshots after: events are full objects, so applying one twice is harmless.

A client may be given several addresses of one farm's Servers (comma-separated): when no connection can be made
to the one in use, the call goes to the next at once (nothing was sent); when one fails after that, or answers
502/503/504 from a load balancer, the call fails as usual and the next call, or the event stream's reconnection,
goes to the next address; `Last-Event-ID` resumes on any Server of the farm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from services.protocol import API_PREFIX
from services.protocol.common import Page
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
from services.protocol.server_answers import (
    AnswerTimeout,
    ApiError,
    BadAnswer,
    json_of,
    kind,
    no_longer_than,
    raise_for_error,
    shown_size,
    valid,
)
from services.protocol.states import JobStatus, Role, TaskStatus, WorkerStatusRequest
from services.protocol.tls import client_context
from services.protocol.workers import UtilisationHistory

# the errors every caller of the client catches: defined with the answers' checks, importable from here
__all__ = ["AnswerTimeout", "ApiError", "BadAnswer", "ServerClient", "raise_for_error"]

M = TypeVar("M", bound=BaseModel)


class Cleared(BaseModel):
    cleared: int


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the connection was never made
_UNAVAILABLE = (502, 503, 504)  # a load balancer with no Server behind it, or a Server going down
_BODY_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class ServerClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
        deadline: float | None = None,
        max_answer: int | None = None,
    ) -> None:
        """`deadline` (seconds) bounds each request and its whole answer, `max_answer` (bytes) an answer's size; both
        leave the event stream alone (it is meant to stay open). The command-line client sets them."""
        self.deadline = deadline
        self.max_answer = max_answer
        self.token = token  # also for the Managers a task's log is read from (task_log_source.py)
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
        return json_of(await self._response(method, path, **kwargs))

    async def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = await self._response(method, path, **kwargs)
        return valid(model, json_of(response), response.status_code)

    async def _models(self, model: type[M], method: str, path: str, **kwargs: Any) -> list[M]:
        response = await self._response(method, path, **kwargs)
        answer = json_of(response)
        if not isinstance(answer, list):
            raise BadAnswer(response.status_code, f"a list was expected, not {kind(answer)}")
        # one by one: the first that does not fit ends it (pydantic would list every problem of every item)
        return [valid(model, x, response.status_code, f"{i}.") for i, x in enumerate(answer)]

    async def _page(self, model: type[M], path: str, at_most: dict[str, int], **kwargs: Any) -> M:
        """A GET of lists no longer than asked for (`at_most`: list key → limit): longer ones are refused before
        validation, whose cost grows with every item that does not fit."""
        response = await self._response("GET", path, **kwargs)
        answer = json_of(response)
        for key, limit in at_most.items():
            no_longer_than(answer, key, limit, response.status_code)
        return valid(model, answer, response.status_code)

    async def _response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _other in range(len(self.urls)):
            index = self._current
            try:
                response = await self._send(index, method, path, **kwargs)
                break
            except _NOT_SENT:
                # no connection was made, so nothing was sent: the next address is asked at once, any request
                self._move_on(index)
                if self._current == index or _other == len(self.urls) - 1:
                    raise
            except httpx.TransportError:
                self._move_on(index)  # it may have been sent: the next call goes elsewhere, this one fails
                raise
        if response.status_code in _UNAVAILABLE:
            self._move_on(index)
        raise_for_error(response)
        return response

    async def _send(self, index: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request and its whole answer, within the deadline and the size cap when they are set."""
        http = self._clients[index]
        if self.deadline is None and self.max_answer is None:
            return await http.request(method, path, **kwargs)
        request = http.build_request(method, path, **kwargs)
        try:
            async with asyncio.timeout(self.deadline):
                response = await http.send(request, stream=True)
                try:
                    body = await self._capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise AnswerTimeout(
                f"the Server's answer did not come in whole within {self.deadline:g} s", request=request
            ) from None
        # the body as read (decoded): the new response must not decode it again
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(
            response.status_code, headers=headers, content=body, request=request, extensions=response.extensions
        )

    async def _capped(self, response: httpx.Response) -> bytes:
        cap = self.max_answer
        length = response.headers.get("content-length", "")
        if cap is not None and length.isdigit() and int(length) > cap:
            raise BadAnswer(response.status_code, f"{int(length):,} bytes announced, over the {shown_size(cap)} cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if cap is not None and size > cap:
                raise BadAnswer(response.status_code, f"over {shown_size(cap)}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _bytes(self, path: str) -> bytes | None:
        """A binary GET; None on 404."""
        index = self._current
        try:
            response = await self._send(index, "GET", path)
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

    async def workers(self) -> list[Worker]:
        return await self._models(Worker, "GET", "/workers")

    async def request_worker_status(self, worker_id: str, status: WorkerStatusRequest, lazy: bool = True) -> Worker:
        body = {"status": status, "lazy": lazy}
        return await self._model(Worker, "POST", f"/workers/{worker_id}/status-request", json=body)

    async def last_rendered(self, scope: str, owner: int | str) -> tuple[LastRendered, bytes] | None:
        """The latest preview of a job (scope "jobs") or a worker ("workers"): what it shows and the image;
        None before the first."""
        try:
            info = await self._model(LastRendered, "GET", f"/{scope}/{owner}/last-rendered/info")
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        image = await self._bytes(f"/{scope}/{owner}/last-rendered")
        return None if image is None else (info, image)

    async def set_worker_tags(self, worker_id: str, tags: Sequence[str]) -> Worker:
        body = {"tags": list(tags)}
        return await self._model(Worker, "PUT", f"/workers/{worker_id}/tags", json=body)

    async def forget_worker(self, worker_id: str) -> None:
        await self._call("DELETE", f"/workers/{worker_id}")

    async def worker_utilisation(
        self, worker_id: str, since: datetime | None = None, limit: int = 3000
    ) -> UtilisationHistory:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        path = f"/workers/{worker_id}/utilisation"
        return await self._page(UtilisationHistory, path, {"samples": limit}, params=params)

    async def managers(self) -> list[Manager]:
        return await self._models(Manager, "GET", "/managers")

    async def create_manager(self, name: str) -> ManagerCreated:
        return await self._model(ManagerCreated, "POST", "/managers", json={"name": name})

    # ---- jobs ----
    async def submit_job(self, job: JobSubmission | dict[str, Any]) -> Job:
        body = job.model_dump(mode="json") if isinstance(job, JobSubmission) else job
        return await self._model(Job, "POST", "/jobs", json=body)

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

    async def get_task(self, task_id: int) -> Task:
        return await self._model(Task, "GET", f"/tasks/{task_id}")

    async def task_action(self, task_id: int, action: str, reason: str = "") -> Task:
        body = {"action": action, "reason": reason}
        return await self._model(Task, "POST", f"/tasks/{task_id}/status", json=body)

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

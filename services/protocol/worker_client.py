"""A typed httpx client for the Worker → Manager API (`/api/v1/worker/...`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence

import httpx

from services.protocol import API_PREFIX
from services.protocol.lean_transport import transport_for
from services.protocol.states import WorkerStatusRequest
from services.protocol.worker_api import (
    INSTANCE_HEADER,
    SIGN_ON_HEADER,
    STATUS_LAZY_HEADER,
    STATUS_REQUESTED_HEADER,
    SUPERSEDED_HEADER,
    AssignedTask,
    Heartbeat,
    MayIRun,
    RegisterRequest,
    RegisterResponse,
    SignOnAnswer,
    SignOnRequest,
    StatusAnswer,
    UpdatesAck,
)

JSON = {"Content-Type": "application/json"}


class ManagerError(Exception):
    """The Manager answered with an error status; `detail` is its readable message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class StaleTask(ManagerError):
    """409: the hand-out is stale or the task was taken away; stop it and drop its updates."""


class Unauthorized(ManagerError):
    """401/403: the worker's credentials are not (or no longer) known to this Manager."""


class NotSignedOn(StaleTask):
    """409 with SIGN_ON_HEADER: the Manager has no sign-on of this worker (it restarted); what the request carried
    was not looked at. Sign on and send it again; nothing is stale."""


class Superseded(ManagerError):
    """409 with SUPERSEDED_HEADER: another process signed on with this worker's identity since; this one stops."""


class NoTask:
    """A 204 answer to a task request; `retry_after` is the Manager's advice in seconds, `status_requested` a
    state change a wrangler asked of this worker (the wait ended early to say so), as a heartbeat answer has it."""

    __slots__ = ("lazy", "retry_after", "status_requested")

    def __init__(
        self, retry_after: float, status_requested: WorkerStatusRequest | None = None, lazy: bool = True
    ) -> None:
        self.retry_after = retry_after
        self.status_requested = status_requested
        self.lazy = lazy


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        detail = str(resp.json().get("detail", resp.text))
    except ValueError:
        detail = resp.text or resp.reason_phrase
    if resp.status_code == 409 and SUPERSEDED_HEADER in resp.headers:
        raise Superseded(resp.status_code, detail)
    if resp.status_code == 409 and SIGN_ON_HEADER in resp.headers:
        raise NotSignedOn(resp.status_code, detail)
    cls = {409: StaleTask, 401: Unauthorized, 403: Unauthorized}.get(resp.status_code, ManagerError)
    raise cls(resp.status_code, detail)


class WorkerClient:
    """One keep-alive connection pool to the Manager. Network failures surface as `httpx.TransportError`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.instance = secrets.token_urlsafe(12)  # this process's, on every call (worker_api.INSTANCE_HEADER)
        # told when the Manager says another process signed on with this worker's identity since
        self.on_superseded: Callable[[], None] | None = None
        self.last_heard = 0.0  # monotonic: the Manager's last answer (not a proxy's or its own 5xx)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + API_PREFIX + "/worker",
            timeout=timeout,
            transport=transport or transport_for(self.base_url, ca_bundle=ca_bundle),
            headers={INSTANCE_HEADER: self.instance},
            event_hooks={"response": [self._heard]},
        )

    async def _heard(self, resp: httpx.Response) -> None:
        if resp.status_code < 500:
            self.last_heard = time.monotonic()
        if resp.status_code == 409 and SUPERSEDED_HEADER in resp.headers and self.on_superseded is not None:
            self.on_superseded()

    def set_credentials(self, worker_id: str, secret: str) -> None:
        self._http.auth = httpx.BasicAuth(worker_id, secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def register(self, body: RegisterRequest) -> RegisterResponse:
        resp = await self._http.post("/register", content=body.model_dump_json(), headers=JSON)
        _raise_for(resp)
        return RegisterResponse.model_validate_json(resp.content)

    async def sign_on(self, body: SignOnRequest) -> SignOnAnswer:
        resp = await self._http.post("/sign-on", content=body.model_dump_json(), headers=JSON)
        _raise_for(resp)
        return SignOnAnswer.model_validate_json(resp.content) if resp.content else SignOnAnswer()

    async def sign_off(self) -> None:
        _raise_for(await self._http.post("/sign-off"))

    async def heartbeat(self, body: Heartbeat) -> StatusAnswer:
        resp = await self._http.post("/heartbeat", content=body.model_dump_json(), headers=JSON)
        _raise_for(resp)
        return StatusAnswer.model_validate_json(resp.content) if resp.content else StatusAnswer()

    async def request_task(
        self,
        *,
        wait_seconds: float = 0.0,
        finished_task_id: int | None = None,
        finished_updates: Sequence[str] = (),
        running_task_id: int | None = None,
    ) -> AssignedTask | NoTask:
        """Ask for a task, optionally reporting the last one's final updates (JSON texts) in the same trip."""
        # the body is assembled from the buffer's stored JSON so a finished task is not re-validated
        body = '{"wait_seconds":' + repr(float(wait_seconds))
        if finished_task_id is not None and finished_updates:
            updates = ",".join(finished_updates)
            body += f',"finished_task_id":{int(finished_task_id)},"finished":{{"updates":[{updates}]}}'
        if running_task_id is not None:
            body += f',"running_task_id":{int(running_task_id)}'
        body += "}"
        resp = await self._http.post("/task", content=body, headers=JSON, timeout=self.timeout + wait_seconds)
        _raise_for(resp)
        if resp.status_code == 204:
            return _no_task(resp)
        return AssignedTask.model_validate_json(resp.content)

    async def send_updates(self, task_id: int, updates: Sequence[str]) -> UpdatesAck:
        """Send updates (each a WorkerTaskUpdate as JSON text) of one task, in seq order."""
        body = '{"updates":[' + ",".join(updates) + "]}"
        resp = await self._http.post(f"/tasks/{task_id}/updates", content=body, headers=JSON)
        _raise_for(resp)
        return UpdatesAck.model_validate_json(resp.content)

    async def may_i_run(
        self, task_id: int, handout: int | None = None, *, wait: float = 0, heard: WorkerStatusRequest | None = None
    ) -> MayIRun:
        """With `wait`, the Manager answers once its answer says something new (stop, or a status request other
        than `heard`), or after `wait` seconds."""
        params: dict[str, str | int | float] = {"handout": handout} if handout is not None else {}
        if wait > 0:
            params["wait"] = wait
        if heard is not None:
            params["heard"] = heard.value
        resp = await self._http.get(f"/tasks/{task_id}/may-i-run", params=params, timeout=self.timeout + wait)
        _raise_for(resp)
        return MayIRun.model_validate_json(resp.content)


def _no_task(resp: httpx.Response) -> NoTask:
    try:
        requested = WorkerStatusRequest(resp.headers.get(STATUS_REQUESTED_HEADER, ""))
    except ValueError:
        requested = None  # none, or one this worker does not know: the heartbeat answer says it again
    return NoTask(_retry_after(resp), requested, resp.headers.get(STATUS_LAZY_HEADER) != "0")


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0

"""Typed async HTTP client of the Manager → Server link (claim, update batches, log upload, client tokens).

It may know several Servers of one farm (several Server processes on one PostgreSQL database, or addresses of
one behind a load balancer): when the one in use stops answering, the next request goes to the next. Nothing
is lost or repeated by the move: update batches are numbered per Manager in the shared database, so a batch
one Server applied and another receives again is recognised as a repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from services.protocol import API_PREFIX
from services.protocol.cli_args import http_url
from services.protocol.lean_transport import transport_for
from services.protocol.link import (
    MANAGER_STORE_HEADER,
    ClaimRequest,
    ClaimResponse,
    ClientIdentity,
    ClientTokenCheck,
    UpdateAck,
    UpdateBatch,
)
from services.protocol.server_answers import busy_wait

CLIENT_TOKEN_TIMEOUT = 10.0  # seconds a client token check may take (a client is waiting)


class LinkError(Exception):
    """The Server could not be reached or failed (5xx): retry later."""


class ServerBusy(LinkError):
    """The Server answered 503 with a Retry-After (its database was busy: a PostgreSQL deadlock's loser, another
    write holding SQLite): it works, and the same request is to be sent to it again after `retry_after`."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkRefused(Exception):
    """The Server refused the request (4xx): retrying the same request will not help."""

    def __init__(
        self, status_code: int, detail: str, body: dict[str, Any] | None = None, retry_after: float = 0.0
    ) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body or {}
        self.retry_after = retry_after  # seconds the Server asked to wait (429's Retry-After), else 0

    def field_message(self, field: str) -> str | None:
        for err in self.body.get("errors", []):
            if isinstance(err, dict) and err.get("field") == field:
                return str(err.get("message", ""))
        return None


def server_urls(spec: str | Sequence[str]) -> list[str]:
    """The Server URLs of `--server`: one, or several separated by commas, in the order to try them."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    urls = [http_url(p) for p in parts if p.strip()]  # a malformed one raises ValueError (cli_args.BadValue)
    if not urls:
        raise ValueError("no Server URL given")
    return urls


class ManagerClient:
    def __init__(
        self,
        base_url: str | Sequence[str],
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
        store_id: str | None = None,
    ) -> None:
        """`store_id`: the Manager's store's, sent with every call (one Manager per token, at the Server)."""
        self.urls = server_urls(base_url)
        self._current = 0
        headers = {"Authorization": f"Bearer {token}"}
        if store_id is not None:
            headers[MANAGER_STORE_HEADER] = store_id
        self._clients = [
            httpx.AsyncClient(
                base_url=url + API_PREFIX,
                headers=headers,
                timeout=httpx.Timeout(timeout, connect=5.0),
                transport=transport or transport_for(url, ca_bundle=ca_bundle),
            )
            for url in self.urls
        ]

    @property
    def server_url(self) -> str:
        """The Server the next request goes to."""
        return self.urls[self._current]

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()

    def _move_on(self, failed: int) -> None:
        """The Server at `failed` did not answer: the next request tries the next one (once per failure, even
        when a claim and a batch fail together)."""
        if self._current == failed:
            self._current = (failed + 1) % len(self.urls)

    async def claim(self, req: ClaimRequest, *, answer_within: float | None = None) -> ClaimResponse:
        """`answer_within`: seconds to wait for the answer, if not the client's own timeout."""
        extra = {"timeout": answer_within} if answer_within is not None else {}
        resp = await self._send("POST", "/manager/claim", content=req.model_dump_json(), **extra)
        return ClaimResponse.model_validate_json(resp.content)

    async def push(self, batch: UpdateBatch, *, answer_within: float | None = None) -> UpdateAck:
        extra = {"timeout": answer_within} if answer_within is not None else {}
        body = batch.model_dump_json(exclude_defaults=True)
        resp = await self._send("POST", "/manager/updates", content=body, **extra)
        return UpdateAck.model_validate_json(resp.content)

    async def upload_log(self, task_id: int, text: str) -> None:
        await self._send(
            "POST",
            f"/manager/tasks/{task_id}/log",
            content=text.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    async def check_client_token(self, token: str) -> ClientIdentity | None:
        """Who holds this Server API token, or None when the Server does not know it.

        A client waits for this answer (a log read, the Manager's status): a Server that takes the connection and
        never answers (stopped, hung) is given CLIENT_TOKEN_TIMEOUT, not the link's 30 s, before the 503."""
        try:
            resp = await self._send(
                "POST",
                "/manager/client-token",
                content=ClientTokenCheck(token=token).model_dump_json(),
                timeout=CLIENT_TOKEN_TIMEOUT,
            )
        except LinkRefused as exc:
            if exc.status_code in (401, 403, 404):
                return None
            raise
        return ClientIdentity.model_validate_json(resp.content)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        index = self._current
        try:
            resp = await self._clients[index].request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self._move_on(index)
            raise LinkError(f"{method} {self.urls[index]}{path}: {exc!r}") from exc
        wait = busy_wait(resp)  # only the Server's own word: a proxy's 503 moves on, as any other 5xx
        if wait is not None:
            raise ServerBusy(f"{method} {self.urls[index]}{path}: HTTP 503: {_detail(resp)}", wait)
        if resp.status_code >= 500:  # a Server failing, or a load balancer with no Server behind it
            self._move_on(index)
            raise LinkError(f"{method} {self.urls[index]}{path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            detail = body.get("detail", resp.text) if isinstance(body, dict) else resp.text
            raise LinkRefused(
                resp.status_code, str(detail), body if isinstance(body, dict) else None, _retry_after(resp)
            )
        return resp


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    return str(body.get("detail", ""))[:300] if isinstance(body, dict) else resp.text[:300]


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(max(float(resp.headers.get("Retry-After", "0")), 0.0), 3600.0)
    except ValueError:  # an HTTP date, or garbage: no wait asked for that we can read
        return 0.0

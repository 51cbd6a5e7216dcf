"""Typed async HTTP client of the Manager → Server link (claim, update batches, log upload, client tokens)."""

from __future__ import annotations

from typing import Any

import httpx

from services.protocol import API_PREFIX
from services.protocol.lean_transport import transport_for
from services.protocol.link import (
    ClaimRequest,
    ClaimResponse,
    ClientIdentity,
    ClientTokenCheck,
    UpdateAck,
    UpdateBatch,
)


class LinkError(Exception):
    """The Server could not be reached or failed (5xx): retry later."""


class LinkRefused(Exception):
    """The Server refused the request (4xx): retrying the same request will not help."""

    def __init__(self, status_code: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body or {}

    def field_message(self, field: str) -> str | None:
        for err in self.body.get("errors", []):
            if isinstance(err, dict) and err.get("field") == field:
                return str(err.get("message", ""))
        return None


class ManagerClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API_PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport or transport_for(base_url, ca_bundle=ca_bundle),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def claim(self, req: ClaimRequest) -> ClaimResponse:
        resp = await self._send("POST", "/manager/claim", content=req.model_dump_json())
        return ClaimResponse.model_validate_json(resp.content)

    async def push(self, batch: UpdateBatch) -> UpdateAck:
        resp = await self._send("POST", "/manager/updates", content=batch.model_dump_json(exclude_defaults=True))
        return UpdateAck.model_validate_json(resp.content)

    async def upload_log(self, task_id: int, text: str) -> None:
        await self._send(
            "POST",
            f"/manager/tasks/{task_id}/log",
            content=text.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    async def check_client_token(self, token: str) -> ClientIdentity | None:
        """Who holds this Server API token, or None when the Server does not know it."""
        try:
            resp = await self._send(
                "POST", "/manager/client-token", content=ClientTokenCheck(token=token).model_dump_json()
            )
        except LinkRefused as exc:
            if exc.status_code in (401, 403, 404):
                return None
            raise
        return ClientIdentity.model_validate_json(resp.content)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        try:
            resp = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise LinkError(f"{method} {path}: {exc!r}") from exc
        if resp.status_code >= 500:
            raise LinkError(f"{method} {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            detail = body.get("detail", resp.text) if isinstance(body, dict) else resp.text
            raise LinkRefused(resp.status_code, str(detail), body if isinstance(body, dict) else None)
        return resp

"""The request-body limit both services put in front of every route, counted on the bytes actually read.

A Content-Length over the limit is refused before anything is read. Without one (chunked uploads), the
bytes are counted as the route reads them and the read is cut at the limit: the route's own answer, if it
still makes one, is dropped and the client gets 413 with the usual `{detail, errors}` body instead. Nothing
beyond the limit is ever held in memory, and the event loop only sees chunks as they come.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised into the route's body read; an HTTPException so frameworks pass it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


def too_large_body(limit: int, size: int | None = None) -> bytes:
    seen = f" ({size} bytes)" if size is not None else ""
    msg = f"the request body{seen} is over the limit of {limit} bytes"
    return json.dumps({"detail": msg, "errors": [{"field": "body", "message": msg}]}).encode()


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies over `max_bytes`, whether declared by Content-Length or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.strip().isdigit() and int(value) > self.max_bytes:
                await self._refuse(send, int(value))
                return
        seen = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the route's own answer to a cut body (400, 422, ...) is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            await self._refuse(send, seen)

    async def _refuse(self, send: Send, size: int) -> None:
        body = too_large_body(self.max_bytes, size)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                # the rest of an oversized upload is not read: the connection is not reused
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

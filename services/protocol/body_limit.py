"""The request-body limit both services put in front of every route, counted on the bytes actually read.

A Content-Length over the limit is refused before anything is read. Without one (chunked uploads), the
bytes are counted as the route reads them and the read is cut at the limit: the route's own answer, if it
still makes one, is dropped and the client gets 413 with the usual `{detail, errors}` body instead. Nothing
beyond the limit is ever held in memory, and the event loop only sees chunks as they come.

A route may have a limit of its own (`route_limits`, by method and path template): the Server's upload of a
Manager's full task log is bigger than any other body, and only that route takes it; the routes anyone may call
without credentials (logging in, registering a worker) take only small bodies. (Other routes read and parse a
body within the limit before their credentials are checked; credentials_first.py turns away only requests
that carry none.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_BODY_BYTES = 64 * 1024  # the body limit of a route anyone may call without credentials


class BodyTooLarge(HTTPException):
    """Raised into the route's body read; an HTTPException so frameworks pass it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


def too_large_body(limit: int, size: int | None = None) -> bytes:
    seen = f" ({size} bytes)" if size is not None else ""
    msg = f"the request body{seen} is over the limit of {limit} bytes"
    return json.dumps({"detail": msg, "errors": [{"field": "body", "message": msg}]}).encode()


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies over `max_bytes`, whether declared by Content-Length or not.

    `route_limits`: {(method, path template such as "/api/v1/manager/tasks/{task_id}/log"): bytes} for the
    routes whose limit is another one.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, route_limits: Mapping[tuple[str, str], int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        given = {(method.upper(), path): limit for (method, path), limit in (route_limits or {}).items()}
        # a path without parameters is looked up, not matched: the Manager's hot routes pay a dict lookup
        self._exact = {key: limit for key, limit in given.items() if "{" not in key[1]}
        self._routes = [
            (method, compile_path(path)[0], limit) for (method, path), limit in given.items() if "{" in path
        ]

    def limit_for(self, scope: Scope) -> int:
        exact = self._exact.get((scope.get("method", ""), scope["path"]))
        if exact is not None:
            return exact
        for method, regex, limit in self._routes:
            if scope.get("method") == method and regex.match(scope["path"]):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope) if self._routes or self._exact else self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
                await self._refuse(send, limit, int(value))
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
                if seen > limit:
                    refused = True
                    raise BodyTooLarge(limit)
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
            await self._refuse(send, limit, seen)

    async def _refuse(self, send: Send, limit: int, size: int) -> None:
        body = too_large_body(limit, size)
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

"""HEAD answered wherever GET is: the GET route's status and headers, without its body.

HTTP requires it of a server that takes GET (RFC 9110, 9.3.2), and monitoring probes, proxies and link
checkers send it; FastAPI makes its GET routes take GET alone, so HEAD was a 405 everywhere. The request goes
through the whole service as a GET (credentials, limits, the route's own checks), and its answer's body is
dropped here: a stream (the event stream, a followed task log) ends once its headers are out.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Answered(Exception):
    """Raised into a streaming route once HEAD's answer is complete, to end it."""


class HeadAsGet:
    """Pure ASGI middleware, outside all but the stop's: HEAD is served as GET, and the answer's body left out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def headers_only(message: Message) -> None:
            nonlocal answered
            if answered:
                raise _Answered
            if message["type"] != "http.response.body":
                await send(message)
                return
            answered = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _Answered

        with contextlib.suppress(_Answered):
            await self.app({**scope, "method": "GET"}, receive, headers_only)

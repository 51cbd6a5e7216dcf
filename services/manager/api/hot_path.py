"""The one route every worker calls for every task, answered without FastAPI's routing layers.

`POST /api/v1/worker/task` (report the finished task, get the next) is most of a busy Manager's requests. Its
handler takes the raw request and builds its own response, so FastAPI adds nothing to it but the route
matching, the exit stacks and the exception wrappers around it, which cost about as much CPU as the handler
itself with no-op tasks. This middleware sits inside the body limit and outside that stack, and calls the same
handler. Its errors get the same answers as through the router: the app's exception handlers, looked up as
Starlette's exception middleware looks them up; anything unhandled goes on to the server-error middleware.
Every other request goes through the app unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class HotRoute:
    """Pure ASGI middleware: `method path` goes straight to `handler`; everything else to the app."""

    def __init__(self, app: ASGIApp, method: str, path: str, handler: Handler) -> None:
        self.app = app
        self.method = method
        self.path = path
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.handler(request)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for `exc`, as Starlette's ExceptionMiddleware picks it (the catch-all `Exception` is
    the server-error middleware's, outside this one)."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None

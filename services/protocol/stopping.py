"""A request still open when its service stops is answered 503 "stopping", not 500.

uvicorn cancels the requests still running a moment after a stop signal (services/protocol/serving.py): long
polls (a Manager's claim waiting at the Server, a worker waiting for a task at its Manager) always are. The
cancellation reached uvicorn, which logged "Exception in ASGI application" with a traceback and answered 500, so
every restart looked like a crash to the client and in the log. This outermost middleware answers such a request
503 with the usual `{detail, errors}` body and `Retry-After` instead, which clients retry like any unavailable
service. A request whose answer had already begun (an event stream) ends as before.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from services.protocol.api_contract import error_json

RETRY_AFTER_SECONDS = "2"


class AnswerWhenStopping:
    """Pure ASGI middleware; add it last (outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if not await _answered(scope, receive, send):
                raise


async def _answered(scope: Scope, receive: Receive, send: Send) -> bool:
    answer = error_json(
        503,
        "the service is stopping; try again in a moment",
        headers={"retry-after": RETRY_AFTER_SECONDS, "connection": "close"},
    )
    try:
        await answer(scope, receive, send)
    except Exception:  # the request's own answer had begun: nothing more can be said on it
        return False
    return True

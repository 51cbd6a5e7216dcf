"""No credentials, no body read: a 401 for a write to a route that needs credentials, before its body arrives.

Both services read a JSON body whole before any route runs (the input guard looks in it for values no field
accepts), and FastAPI parses a body before a route's dependencies check the caller. So without this, anyone
who can reach a service could make it wait for, and hold, up to a body's limit (8 MiB) on every connection,
with no credentials at all. This middleware sits outside the others and answers a POST, PUT, PATCH or DELETE
that carries no credentials (no `Authorization` header, or a blank one) with the services' usual 401 body,
unless the route is one of the few that are public by design (logging in; registering a worker with the
registration secret in its body). Such a write to a path no route takes that way (an unknown path, another
spelling of a real one: a trailing slash, `//`) is answered here too, 404 or 405 as the app would, since the
input guard inside would otherwise read its body first. Whether credentials sent are good is still the route's
to say, after the body (read within its limit). Requests with credentials pay one look at their headers; only
one without them is matched against the routes. These answers close the connection: the body is never read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from services.protocol.api_contract import error_json

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Wanted(NamedTuple):
    """What a route wants: the scheme (for WWW-Authenticate), and the service's own 401 message and field."""

    scheme: str
    message: str
    field: str


class CredentialsFirst:
    """Pure ASGI middleware. `public`: the paths written to without credentials; `wanted(path)`: the scheme the
    route of that path wants (its WWW-Authenticate) and the service's own message for a request without one."""

    def __init__(
        self,
        app: ASGIApp,
        public: Collection[str],
        wanted: Callable[[str], Wanted],
        routes: Callable[[], Sequence[BaseRoute]],
    ) -> None:
        self.app = app
        self.public = frozenset(public)
        self.wanted = wanted
        self.routes = routes  # the app's, read when a request needs them (routes may be added after this is made)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WRITES
            or scope["path"] in self.public
            or _has_credentials(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        matches = {route.matches(scope)[0] for route in self.routes()}
        close = {"connection": "close"}  # the body, if any, is left unread
        if Match.FULL in matches:
            wanted = self.wanted(scope["path"])
            answer = error_json(401, wanted.message, wanted.field, {**close, "www-authenticate": wanted.scheme})
        elif Match.PARTIAL in matches:
            answer = error_json(405, "Method Not Allowed", headers=close)
        else:
            answer = error_json(404, "Not Found", headers=close)
        await answer(scope, receive, send)


def _has_credentials(headers: list[tuple[bytes, bytes]]) -> bool:
    """An Authorization header with a scheme and a value: a blank one, or a scheme alone, is none."""
    return any(name == b"authorization" and len(value.split(None, 1)) == 2 for name, value in headers)

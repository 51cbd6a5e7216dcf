"""No credentials, no body read: a 401 for a write to a route that needs credentials, before its body arrives.

Both services read a JSON body whole before any route runs (the input guard looks in it for values no field
accepts), and FastAPI parses a body before a route's dependencies check the caller. So without this, anyone
who can reach a service could make it wait for, and hold, up to a body's limit (8 MiB) on every connection,
with no credentials at all. This middleware sits outside the others and answers a POST, PUT, PATCH or DELETE
that carries no `Authorization` header with the services' usual 401 body, unless the route is one of the few
that are public by design (logging in; registering a worker with the registration secret in its body), or no
route takes that method at that path (the app's own 404 or 405 then). Whether the credentials sent are good is
still the route's to say, after the body (read within its limit). Requests with credentials pay one look at
their headers; only one without them is matched against the routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Wanted(NamedTuple):
    """What a route wants: the scheme (for WWW-Authenticate), and the service's own 401 message and field."""

    scheme: str
    message: str
    field: str


def refusal(wanted: Wanted) -> bytes:
    errors = [{"field": wanted.field, "message": wanted.message}]
    return json.dumps({"detail": wanted.message, "errors": errors}).encode()


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
            or any(name == b"authorization" for name, _ in scope["headers"])
            or not any(route.matches(scope)[0] == Match.FULL for route in self.routes())
        ):
            await self.app(scope, receive, send)
            return
        wanted = self.wanted(scope["path"])
        body = refusal(wanted)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", wanted.scheme.encode()),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

"""No good credentials, no body read: a write to a route that needs credentials is refused before its body arrives.

Both services read a JSON body whole before any route runs (the input guard looks in it for values no field
accepts), and FastAPI parses a body before a route's dependencies check the caller. So without this, anyone
who can reach a service could make it wait for, and hold, up to a body's limit (8 MiB) on every connection,
with no credentials, or with made-up ones. This middleware sits outside the others and answers a POST, PUT,
PATCH or DELETE that carries no credentials (no `Authorization` header, or a blank one) with the services' usual
401 body, unless the route is one of the few that are public by design (logging in; registering a worker with the
registration secret in its body); credentials sent are first put to the service's `vouch`, which answers as the
route would for ones it would refuse (unknown, revoked, the wrong kind: 401; an address that sent too many bad
ones: 429), from what it has seen lately, so a good caller pays a dictionary look-up. Such a write to a path no
route takes that way (an unknown path, another spelling of a real one: a trailing slash, `//`) is answered 404 or
405 as the app would, since the input guard inside would otherwise read its body first. What a good caller may do
is still the route's to say. These answers close the connection: the body is never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import NamedTuple

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from services.protocol.api_contract import error_json, method_not_allowed

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Wanted(NamedTuple):
    """What a route wants: the scheme (for WWW-Authenticate), and the service's own 401 message and field."""

    scheme: str
    message: str
    field: str


class Refusal(NamedTuple):
    """How a route would refuse the credentials sent: its status, message, field and extra headers."""

    status: int
    message: str
    field: str | None
    headers: Mapping[str, str] = {}


# the request's scope and its Authorization header (latin-1, as Starlette reads it) -> a refusal, or None to go on
Vouch = Callable[[Scope, str], Awaitable[Refusal | None]]


class CredentialsFirst:
    """Pure ASGI middleware. `public`: the paths written to without credentials; `wanted(path)`: the scheme the
    route of that path wants (its WWW-Authenticate) and the service's own message for a request without one;
    `service`: the app whose routes it answers for; `vouch`: how the service's routes would answer the credentials
    sent, when they would refuse them."""

    def __init__(
        self,
        app: ASGIApp,
        public: Collection[str],
        wanted: Callable[[str], Wanted],
        service: FastAPI,
        vouch: Vouch | None = None,
    ) -> None:
        self.app = app
        self.public = frozenset(public)
        self.wanted = wanted
        self.service = service  # its routes are read when a request needs them (they may be added after this is made)
        self.vouch = vouch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        authorization = _credentials(scope["headers"])
        refusal: Refusal | None
        if authorization is None:
            wanted = self.wanted(scope["path"])
            refusal = Refusal(401, wanted.message, wanted.field, {"www-authenticate": wanted.scheme})
        else:
            refusal = await self.vouch(scope, authorization) if self.vouch is not None else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        close = {"connection": "close"}  # the body, if any, is left unread
        matches = {route.matches(scope)[0] for route in self.service.routes}
        documented = self.service.openapi().get("paths", {}).get(scope["path"])
        if documented is not None and scope["method"].lower() not in documented:
            # the route that takes it only refuses the method (`DELETE /jobs/bulk`): its 405, as with credentials
            answer = method_not_allowed(scope, self.service, close)
        elif Match.FULL in matches:
            answer = error_json(refusal.status, refusal.message, refusal.field, {**close, **refusal.headers})
        elif Match.PARTIAL in matches:
            answer = method_not_allowed(scope, self.service, close)
        else:
            answer = error_json(404, "Not Found", headers=close)
        await answer(scope, receive, send)


def _credentials(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Authorization header (the first, which the routes read) when it has a scheme and a value: a blank one,
    or a scheme alone, is none."""
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1") if len(value.split(None, 1)) == 2 else None
    return None
